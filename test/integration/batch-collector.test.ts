import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { BatchCollector } from '../../src/queue/batch-collector.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { messageJobId, RedisKeys } from '../../src/queue/redis-keys.js';
import { bullQueueOf, cleanup, isolatedNames, testConfig } from '../helpers/services.js';

const config = testConfig(isolatedNames('collector'));
const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
afterAll(async () => {
  redis.disconnect();
  await cleanup(config);
});

it('hands the jobs it took back to the queue when filling a batch fails half-way, and says so', async () => {
  // First come, first served: the jobs wait in BullMQ's wait list, and the failure below is injected in its other set.
  const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
    fairShare: false,
  });
  const collector = new BatchCollector(redis.duplicate(), {
    queueName: config.queue.name,
    prefix: config.queue.prefix,
    batchSize: 8,
    batchWaitMs: 3_000,
    lockDurationMs: 30_000,
    stalledIntervalMs: 30_000,
    maxStalledCount: 1,
  });
  const queue = bullQueueOf(config, redis);
  const prioritized = `${new RedisKeys(config.queue.prefix, config.queue.name).queue}:prioritized`;
  try {
    await collector.start();
    await producer.enqueue({ v: 1, messageId: 'first', conversationId: 'c', userId: 'u', text: 'hello' });
    const taking = collector.next().then(
      () => 'filled',
      (err: Error) => err.message,
    );
    await expect.poll(() => queue.getJobState(messageJobId('first')), { interval: 5 }).toBe('active');
    // While the batch waits to fill, Redis starts answering its takes with an error (a key of the wrong type).
    await redis.set(prioritized, 'not a sorted set');
    expect(await taking).toMatch(/^taking a batch failed after 1 job\(s\): WRONGTYPE.*; they were handed back$/);
    await redis.del(prioritized);
    expect(await queue.getJobState(messageJobId('first'))).toBe('waiting');
    // The job is taken again at once, not after its lock expired.
    const again = await collector.next();
    expect(again?.jobs.map((j) => j.id)).toEqual([messageJobId('first')]);
  } finally {
    await redis.del(prioritized);
    await collector.close();
    await queue.close();
    await producer.close();
  }
});
