/**
 * Entry point of the HTTP API (`npm run api`): wires configuration, Redis, the database and the producer into the
 * Fastify server and listens on AVA_API_HOST:AVA_API_PORT (loopback by default) until SIGTERM or SIGINT.
 */
import { buildApiServer } from '../src/api/api-server.js';
import { failStart, startProcess } from '../src/config/process-start.js';
import { ServiceConnections } from '../src/connections/service-connections.js';
import { ReplyStreamReader } from '../src/queue/reply-stream-reader.js';

const { config, log } = startProcess('ava-api');

try {
  if (config.api.tokens.length === 0) log.warn('AVA_API_TOKENS is empty: every authenticated route will answer 401');
  const connections = new ServiceConnections(config);
  const { redis, database } = await connections.both('requests');
  const producer = connections.producer(redis, database);
  // Connected before use: a request-path connection has no offline queue to hold commands until it is.
  const subscriber = redis.duplicate();
  await subscriber.connect();
  // While Redis is away each reconnection attempt fails; requests answer 503 on their own, this keeps it on record.
  for (const r of [redis, subscriber]) r.on('error', (err) => log.warn({ err: err.message }, 'Redis connection error'));
  const { keys } = connections;
  const streams = new ReplyStreamReader(redis, subscriber, keys);
  const app = await buildApiServer({ config, keys, producer, database, redis, streams, log });
  await app.listen({ host: config.api.host, port: config.api.port });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'stopping the API');
    await app.close();
    await producer.close();
    await Promise.all([database.close(), redis.quit(), subscriber.quit()]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
} catch (err) {
  failStart(log, 'API', err);
}
