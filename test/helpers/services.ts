import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { loadConfig, type AvaConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging/logger.js';
import { Database } from '../../src/storage/database.js';
import { ROOT, TINY_MODEL_DIR } from './paths.js';

/** Redis and database URLs of the local services that `scripts/services.sh up` started. */
export const REDIS_URL = process.env.AVA_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const MONGO_URL = process.env.AVA_MONGO_URL ?? 'mongodb://127.0.0.1:27017';

/** A queue and database name of its own for one test, so tests run in parallel without seeing each other. */
export function isolatedNames(tag: string): { queueName: string; dbName: string } {
  const suffix = `${tag}_${randomBytes(4).toString('hex')}`;
  return { queueName: `t_${suffix}`, dbName: `t_${suffix}`.slice(0, 38) };
}

/** Configuration for one test: isolated names, the tiny model, quiet logs, overrides on top. */
export function testConfig(
  names: { queueName: string; dbName: string },
  overrides: Record<string, string> = {},
): AvaConfig {
  return loadConfig(
    {},
    {
      AVA_REDIS_URL: REDIS_URL,
      AVA_MONGO_URL: MONGO_URL,
      AVA_QUEUE_NAME: names.queueName,
      AVA_DB_NAME: names.dbName,
      AVA_MODEL: TINY_MODEL_DIR,
      AVA_LOG_LEVEL: 'silent',
      AVA_MAX_NEW_TOKENS: '8',
      AVA_INTRA_OP_THREADS: '1',
      // The light recogniser unless a test asks for Whisper: most worlds never hear a voice message, and Whisper base
      // takes a few hundred MB and seconds to load in each worker.
      AVA_ASR: 'pocketsphinx',
      // The pipeline's own tests send every readable message to the model; the dialogue tests use config/intents.yaml.
      AVA_INTENTS_FILE: path.join(ROOT, 'test/fixtures/intents-model-only.yaml'),
      ...overrides,
    },
  );
}

/** The test's queue as BullMQ sees it, to set up jobs in states a producer never makes (delayed, half-retried). */
export function bullQueueOf(config: AvaConfig, connection: Redis): Queue {
  return new Queue(config.queue.name, { connection, prefix: config.queue.prefix });
}

/**
 * The test file's database and Redis connection: opened before its tests, closed after them, with everything the
 * test stored dropped. Read `stores.db` and `stores.redis` inside the tests.
 */
export function sharedStores(config: AvaConfig): { db: Database; redis: Redis } {
  const stores = {} as { db: Database; redis: Redis };
  beforeAll(async () => {
    stores.db = await Database.connect(config.storage.url, config.storage.dbName);
    stores.redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    stores.redis?.disconnect();
    await stores.db?.close();
    await cleanup(config);
  });
  return stores;
}

/** A silent logger for in-process workers. */
export const silentLog = createLogger({ level: 'silent' });

/** Drops the test's database, obliterates its queue and deletes every other key under the queue's name. */
export async function cleanup(config: AvaConfig): Promise<void> {
  const client = await MongoClient.connect(MONGO_URL);
  await client.db(config.storage.dbName).dropDatabase();
  await client.close();
  const queue = new Queue(config.queue.name, { connection: { url: REDIS_URL }, prefix: config.queue.prefix });
  await queue.obliterate({ force: true });
  await queue.close();
  const redis = new Redis(REDIS_URL);
  // Reply streams and the reconciler's cursor live beside BullMQ's keys, which obliterate does not know.
  const leftovers = await redis.keys(`${config.queue.prefix}:${config.queue.name}:*`);
  if (leftovers.length > 0) await redis.del(...leftovers);
  await redis.quit();
}

/** A worker process started with `npm run worker`'s entry point; its pino lines are collected as objects. */
export interface WorkerProcess {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  /** Resolves when a log line satisfies `pred`. */
  waitFor(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Spawns the compiled worker (`npm run worker`'s entry point) with the test's configuration, from `root`. */
export function spawnWorker(config: AvaConfig, env: Record<string, string> = {}, root = ROOT): WorkerProcess {
  const child = spawn(process.execPath, ['dist/workers/message-worker.js'], {
    cwd: root,
    env: {
      ...process.env,
      AVA_REDIS_URL: config.redis.url,
      AVA_MONGO_URL: config.storage.url,
      AVA_QUEUE_NAME: config.queue.name,
      AVA_DB_NAME: config.storage.dbName,
      AVA_MODEL: config.model.id,
      AVA_MAX_NEW_TOKENS: String(config.engine.maxNewTokens),
      AVA_BATCH_SIZE: String(config.queue.batchSize),
      AVA_INTENTS_FILE: config.intents.file,
      AVA_ASR: config.voice.asr,
      AVA_INTRA_OP_THREADS: '1',
      AVA_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];
  let buffer = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const raw = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of [...waiters])
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': 'exit' can fire while the last lines are still in the stdout pipe, unread.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitFor(pred, timeoutMs = 60_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`worker log line not seen in ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
  };
}
