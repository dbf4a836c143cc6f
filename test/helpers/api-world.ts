import type { FastifyInstance } from 'fastify';
import { ServiceConnections } from '../../src/connections/service-connections.js';
import { buildApiServer } from '../../src/api/api-server.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import type { TextGenerator } from '../../src/generation/text-generator.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { connectRedis, requestPathRedisOptions } from '../../src/queue/redis-connection.js';
import { ReplyStreamReader } from '../../src/queue/reply-stream-reader.js';
import { Database } from '../../src/storage/database.js';
import { TINY_MODEL_DIR } from './paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from './services.js';

/**
 * A whole service for API-level tests: its own queue and database, an in-process worker on the tiny model (engine),
 * the API server, and a `close` that tears everything down and drops the test's data.
 */
export async function startApiWorld(
  tag: string,
  overrides: Record<string, string>,
  wrap: (g: TextGenerator) => TextGenerator = (g) => g,
) {
  const config = testConfig(isolatedNames(tag), overrides);
  const generator = await EngineGenerator.load({
    id: 'tiny',
    dir: TINY_MODEL_DIR,
    intraOpThreads: 1,
    maxBatchSize: 16,
    maxCachedTokens: 8192,
  });
  const worker: WorkerApp = await startWorkerApp(config, wrap(generator), silentLog);
  const database = await Database.connect(config.storage.url, config.storage.dbName);
  // The API's own connection options: request paths fail fast while Redis is away.
  const redis = await connectRedis({ url: config.redis.url }, requestPathRedisOptions(config.redis.commandTimeoutMs));
  const subscriber = redis.duplicate();
  await subscriber.connect();
  for (const r of [redis, subscriber]) r.on('error', (err) => silentLog.warn({ err }, 'Redis connection error'));
  // The producer and key names as the API process wires them.
  const connections = new ServiceConnections(config);
  const { keys } = connections;
  const streams = new ReplyStreamReader(redis, subscriber, keys);
  const producer = connections.producer(redis, database);
  const api: FastifyInstance = await buildApiServer({
    config,
    keys,
    producer,
    database,
    redis,
    streams,
    log: silentLog,
  });
  return {
    config,
    keys,
    api,
    generator,
    database,
    redis,
    streams,
    producer,
    /** Listens on a loopback port and returns the base URL, for clients that need a real socket. */
    async listen(): Promise<string> {
      await api.listen({ host: '127.0.0.1', port: 0 });
      return `http://127.0.0.1:${(api.server.address() as import('node:net').AddressInfo).port}`;
    },
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
