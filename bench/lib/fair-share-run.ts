import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/config.js';
import { scopedKey } from '../../src/contract/scoped-key.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { Database } from '../../src/storage/database.js';
import { spawnWorker } from '../../test/helpers/services.js';
import { quantile } from './bench-utils.js';
import { publishedBatchSteps } from './published-batch-steps.js';

/** Settings of the fair-share runs. */
export interface FairShareSettings {
  /** Messages tenant A enqueues at once. */
  backlog: number;
  workers: number;
  batchSize: string;
  dbName: string;
  stamp: number;
}

/** One run's figures: tenant B's latencies while A's backlog drains, against the batch time. */
export interface FairShareRow {
  fairShare: 'on' | 'off';
  'A messages': number;
  'B messages': number;
  'B p50 ms': number;
  'B p99 ms': number;
  'batch ms': number;
  'B p99 / batch': number;
  'A drained in s': number;
}

/**
 * Tenant A enqueues `backlog` messages at once while tenant B sends one a second, on the instant generator: with
 * fair share each job's priority is its rank among its tenant's unanswered messages, so B's message goes ahead of
 * A's backlog; without, it waits behind all of it. Reports B's p50/p99 enqueue-to-stored latency and the mean batch
 * time (the metrics the workers publish), for fair share on and off.
 */
export async function fairShareRuns(s: FairShareSettings): Promise<FairShareRow[]> {
  return [await fairShareRun(s, true), await fairShareRun(s, false)];
}

async function fairShareRun(s: FairShareSettings, fair: boolean): Promise<FairShareRow> {
  const queueName = `bench_fair_${fair ? 'on' : 'off'}_${s.stamp}`;
  const config = loadConfig(process.env, {
    AVA_QUEUE_NAME: queueName,
    AVA_DB_NAME: s.dbName,
    AVA_BATCH_SIZE: s.batchSize,
  });
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const keys = new RedisKeys(config.queue.prefix, queueName);
  const producer = (tenant: string) =>
    new MessageProducer(redis, keys, { attempts: 8, backoffMs: 500, tenant, fairShare: fair, maxQueuedPerTenant: 0 });
  const [a, b] = [producer('a'), producer('b')];
  const workers = Array.from({ length: s.workers }, () =>
    spawnWorker(config, {
      AVA_GENERATOR: 'instant',
      AVA_MAX_INFLIGHT_BATCHES: '2',
      AVA_ENCODER: 'off',
      AVA_ENCODER_ZH: 'off',
    }),
  );
  const message = (tenant: string, i: number) => ({
    v: 1 as const,
    // Unique to the run: the runs share a database, and an id stored by an earlier run would be found, not stored.
    messageId: `${queueName}-${tenant}-${i}`,
    conversationId: `${tenant}-c-${i % 500}`,
    userId: `${tenant}-u`,
    text: `Turtle ${i} swims in the sea all day`,
  });
  const db = await Database.connect(config.storage.url, s.dbName);
  try {
    await Promise.all(workers.map((w) => w.waitFor((l) => l.msg === 'worker ready', 120_000)));
    const t0 = performance.now();
    for (let i = 0; i < s.backlog; i += 1_000)
      await a.enqueueMany(Array.from({ length: Math.min(1_000, s.backlog - i) }, (_, k) => message('a', i + k)));
    const bIds: string[] = [];
    const queue = new Queue(queueName, { connection: redis, prefix: config.queue.prefix });
    // B sends one message a second while A's backlog lasts, and at least five.
    for (let i = 0; ; i++) {
      await b.enqueue(message('b', i));
      bIds.push(scopedKey('b', message('b', i).messageId));
      await sleep(1_000);
      const left = await queue.getJobCounts('prioritized', 'waiting', 'active', 'delayed');
      if (i >= 4 && Object.values(left).every((n) => n === 0)) break;
    }
    // Within the last second.
    const drainedS = (performance.now() - t0) / 1000;
    for (let waited = 0; (await db.replies.countDocuments({ _id: { $in: bIds } })) < bIds.length; waited += 100) {
      if (waited > 60_000) throw new Error('tenant B was not answered within a minute');
      await sleep(100);
    }
    const docs = await db.replies.find({ _id: { $in: bIds } }).toArray();
    const latencies = docs.map((d) => d.createdAt.getTime() - d.timings.queuedAt.getTime());
    await queue.close();
    const published = await publishedBatchSteps(redis, keys.workers, s.workers, Date.now());
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    const batchMs = Object.values(published.msPerStep).reduce((x, y) => x + y, 0);
    const p99 = quantile(latencies, 0.99);

    return {
      fairShare: fair ? 'on' : 'off',
      'A messages': s.backlog,
      'B messages': bIds.length,
      'B p50 ms': quantile(latencies, 0.5),
      'B p99 ms': p99,
      'batch ms': +batchMs.toFixed(1),
      'B p99 / batch': +(p99 / batchMs).toFixed(2),
      'A drained in s': +drainedS.toFixed(1),
    };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all([a.close(), b.close()]);
    const leftovers = await redis.keys(`${config.queue.prefix}:${queueName}:*`);
    if (leftovers.length > 0) await redis.del(...leftovers);
    redis.disconnect();
    await db.close();
  }
}
