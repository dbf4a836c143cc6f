/**
 * `npm run bench:enqueue`: what durable enqueues cost. Two Redis servers of the bench's own, append-only, one with
 * `appendfsync everysec` (the baseline) and one with `appendfsync always` (the default of scripts/services.sh and
 * docker-compose.yml: every acknowledged write is on disk first). On each: 4,000 single enqueues, 64 producers at
 * once, and 20,000 in `enqueueMany` batches of 500. Prints a table, writes bench/results/enqueue-<timestamp>.json,
 * and reports always/everysec as a ratio.
 */
import { Redis } from 'ioredis';
import { RedisKeys } from '../src/queue/redis-keys.js';
import { MessageProducer } from '../src/queue/message-producer.js';
import { OwnRedis } from '../test/helpers/redis-server.js';
import { machine, quantile, writeResult } from './lib/bench-utils.js';

const SINGLE = Number(process.env.BENCH_SINGLE || 4_000);
const CONCURRENCY = 64;
const BULK = Number(process.env.BENCH_BULK || 20_000);
const BULK_SIZE = 500;

async function measure(appendfsync: 'everysec' | 'always') {
  const server = await OwnRedis.start(appendfsync);
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const producer = new MessageProducer(redis, new RedisKeys('bull', 'bench-enqueue'), {
    attempts: 8,
    backoffMs: 1_000,
  });
  try {
    const message = (id: string) => ({
      v: 1 as const,
      messageId: id,
      conversationId: 'c',
      userId: 'u',
      text: 'Where is my parcel?',
    });
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < SINGLE) {
          const id = `s-${next++}`;
          const started = performance.now();
          await producer.enqueue(message(id));
          latencies.push(performance.now() - started);
        }
      }),
    );
    const singleS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    for (let s = 0; s < BULK; s += BULK_SIZE)
      await producer.enqueueMany(Array.from({ length: BULK_SIZE }, (_, k) => message(`b-${s + k}`)));
    const bulkS = (performance.now() - t1) / 1000;
    return {
      appendfsync,
      'single enqueues/s': +(SINGLE / singleS).toFixed(0),
      'single p50 ms': +quantile(latencies, 0.5).toFixed(2),
      'single p99 ms': +quantile(latencies, 0.99).toFixed(2),
      'bulk messages/s': +(BULK / bulkS).toFixed(0),
    };
  } finally {
    await producer.close();
    redis.disconnect();
    await server.close();
  }
}

const baseline = await measure('everysec');
const durable = await measure('always');
const ratios = {
  'single enqueues/s always/everysec': +(durable['single enqueues/s'] / baseline['single enqueues/s']).toFixed(2),
  'bulk messages/s always/everysec': +(durable['bulk messages/s'] / baseline['bulk messages/s']).toFixed(2),
};
console.table([baseline, durable]);
console.table([ratios]);
console.log(
  `written ${await writeResult('enqueue', { benchmark: 'enqueue', machine: machine(), concurrency: CONCURRENCY, bulkSize: BULK_SIZE, rows: [baseline, durable], ratios })}`,
);
