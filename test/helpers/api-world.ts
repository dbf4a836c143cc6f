import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../src/api/api-server.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { TokenSubscriber } from '../../src/queue/token-stream.js';
import { Database } from '../../src/storage/database.js';
import { TINY_MODEL_DIR } from './paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from './services.js';

/**
 * A whole service for API-level tests: its own queue and database, an in-process worker on the tiny model (engine),
 * the API server, and a `close` that tears everything down and drops the test's data.
 */
export async function startApiWorld(tag: string, overrides: Record<string, string>) {
  const config = testConfig(isolatedNames(tag), overrides);
  const generator = await EngineGenerator.load({ id: 'tiny', dir: TINY_MODEL_DIR, intraOpThreads: 1, maxBatchSize: 16, maxCachedTokens: 8192 });
  const worker: WorkerApp = await startWorkerApp(config, generator, silentLog);
  const database = await Database.connect(config.mongoUrl, config.dbName);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const subscriber = redis.duplicate();
  const streams = new TokenSubscriber(subscriber, config.queuePrefix, config.queueName);
  const producer = new MessageProducer(redis, { queueName: config.queueName, prefix: config.queuePrefix, attempts: 3, backoffMs: 100 });
  const api: FastifyInstance = await buildApiServer({ config, producer, database, redis, streams, log: silentLog });
  return {
    config,
    api,
    database,
    redis,
    streams,
    producer,
    async close() {
      await api.close();
      await worker.stop();
      await generator.close();
      await producer.close();
      redis.disconnect();
      subscriber.disconnect();
      await database.close();
      await cleanup(config);
    },
  };
}
