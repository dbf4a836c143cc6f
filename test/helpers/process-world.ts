import { Redis } from 'ioredis';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import type { AvaConfig } from '../../src/config/config.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { Database } from '../../src/storage/database.js';
import { cleanup, isolatedNames, testConfig, type WorkerProcess } from './services.js';

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
  const workers: WorkerProcess[] = [];
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
    redis.disconnect();
    await db.close();
    await cleanup(config);
  };
  return { config, producer, db, redis, workers, messages, close };
}
