/**
 * Entry point of the HTTP API (`npm run api`): wires configuration, Redis, the database and the producer into the
 * Fastify server and listens on AVA_API_HOST:AVA_API_PORT (loopback by default) until SIGTERM or SIGINT.
 */
import { buildApiServer } from '../src/api/api-server.js';
import { loadConfig } from '../src/config/config.js';
import { AvaError } from '../src/errors/errors.js';
import { createLogger } from '../src/logging/logger.js';
import { MessageProducer } from '../src/queue/message-producer.js';
import { connectRedis } from '../src/queue/redis-connection.js';
import { TokenSubscriber } from '../src/queue/token-stream.js';
import { Database } from '../src/storage/database.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  process.stderr.write(`${err instanceof AvaError ? err.toLine() : String(err)}\n`);
  process.exit(1);
}
const log = createLogger({ level: config.logLevel, name: 'ava-api' });

try {
  if (config.apiTokens.length === 0) log.warn('AVA_API_TOKENS is empty: every authenticated route will answer 401');
  const [redis, database] = await Promise.all([connectRedis(config.redisUrl), Database.connect(config.mongoUrl, config.dbName, config.mongoTimeoutMs, config.mongoSocketTimeoutMs)]);
  const producer = new MessageProducer(redis, { queueName: config.queueName, prefix: config.queuePrefix, attempts: config.jobAttempts, backoffMs: config.jobBackoffMs });
  const streams = new TokenSubscriber(redis.duplicate(), config.queuePrefix, config.queueName);
  const app = await buildApiServer({ config, producer, database, redis, streams, log });
  await app.listen({ host: config.apiHost, port: config.apiPort });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'stopping the API');
    await app.close();
    await producer.close();
    await Promise.all([database.close(), redis.quit()]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
} catch (err) {
  const fields = err instanceof AvaError ? { code: err.code, hint: err.hint } : {};
  log.fatal({ err, ...fields }, `API failed to start: ${err instanceof AvaError ? err.toLine() : String(err)}`);
  process.exit(1);
}
