import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import type { AvaConfig } from '../../src/config/config.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { Database } from '../../src/storage/database.js';
import { cleanup, isolatedNames, testConfig, type WorkerProcess } from './services.js';
import { generationAttempts } from './generation-attempts.js';

/**
 * One test's world for worker-process tests: its own queue and database, a producer, a database handle, the worker
 * processes it spawns, and a `close` that kills leftovers and drops everything.
 */
export async function processWorld(tag: string, overrides: Record<string, string> = {}) {
  const config: AvaConfig = testConfig(isolatedNames(tag), overrides);
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 8,
    backoffMs: 200,
  });
  const db = await Database.connect(config.storage.url, config.storage.dbName);
  const queue = new Queue(config.queue.name, { connection: redis, prefix: config.queue.prefix });
  const workers: WorkerProcess[] = [];
  /** Generations of these messages so far, from their reply streams: one per attempt, whoever ran it. */
  const generations = async (ids: readonly string[]) =>
    [...(await generationAttempts(redis, config.queue.prefix, config.queue.name, ids)).values()].reduce(
      (n, attempts) => n + attempts.size,
      0,
    );
  /** Waits until a worker has taken a batch: jobs in BullMQ's active list. */
  const taken = () => expect.poll(() => queue.getActiveCount(), { timeout: 60_000, interval: 50 }).toBeGreaterThan(0);
  /** Waits until some reply is stored. */
  const someStored = () =>
    expect.poll(() => db.replies.countDocuments({}), { timeout: 60_000, interval: 50 }).toBeGreaterThan(0);
  /** How many jobs each worker (by its BullMQ name) completed. */
  const completedBy = async () => {
    const byWorker = new Map<string, number>();
    for (const job of await queue.getJobs(['completed'], 0, -1))
      byWorker.set(job.processedBy ?? '', (byWorker.get(job.processedBy ?? '') ?? 0) + 1);
    return byWorker;
  };
  const messages = (n: number, text = 'where is my order?') =>
    Array.from({ length: n }, (_, i) => ({
      v: 1 as const,
      messageId: `p-${i}`,
      conversationId: `conv-${i % 17}`,
      userId: 'u',
      text: `Message ${i}: ${text}`,
    }));
  const close = async () => {
    for (const w of workers) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill('SIGKILL');
        await w.exited;
      }
    }
    await producer.close();
    await queue.close();
    redis.disconnect();
    await db.close();
    await cleanup(config);
  };
  return { config, producer, db, redis, queue, workers, messages, generations, taken, someStored, completedBy, close };
}
