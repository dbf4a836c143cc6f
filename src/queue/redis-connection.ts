import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { ServiceUnavailableError } from '../errors/errors.js';
import { redactUrl } from '../logging/redact.js';

/**
 * Options every BullMQ connection needs: `maxRetriesPerRequest: null` so blocking commands survive a Redis restart
 * (BullMQ requires it for workers), and a bounded reconnect backoff.
 */
export const BULLMQ_REDIS_OPTIONS: RedisOptions = {
  maxRetriesPerRequest: null,
  enableReadyCheck: true,
  retryStrategy: (times) => Math.min(times * 200, 2_000),
};

/** Where Redis is and how to trust it. */
export interface RedisTarget {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** PEM file of the CA that signed the server's certificate, for `rediss://` with a private CA; system CAs otherwise. */
  tlsCaFile?: string;
}

/**
 * Opens a Redis connection for BullMQ and checks it answers. With `rediss://` the connection is TLS, verified against
 * the system CAs or `tlsCaFile`; credentials come from the URL. Connections duplicated from it share these options.
 */
export async function connectRedis(target: RedisTarget, extra: RedisOptions = {}): Promise<Redis> {
  const { url } = target;
  const tls = target.tlsCaFile ? { tls: { ca: readFileSync(target.tlsCaFile) } } : {};
  const redis = new Redis(url, { ...BULLMQ_REDIS_OPTIONS, lazyConnect: true, ...tls, ...extra });
  // While connecting, the error event carries the real reason (a certificate not trusted, a refused connection) while
  // connect() often rejects with only "Connection is closed"; it is reported below. Once connected, BullMQ's
  // listeners take the connection's errors over.
  let reason: Error | undefined;
  const duringConnect = (err: Error) => {
    reason ??= err;
  };
  redis.on('error', duringConnect);
  try {
    await redis.connect();
    await redis.ping();
    redis.off('error', duringConnect);
    return redis;
  } catch (cause) {
    redis.off('error', duringConnect);
    redis.disconnect();
    throw new ServiceUnavailableError(`Redis at ${redactUrl(url)} is unreachable: ${(reason ?? (cause as Error)).message}`, {
      hint: 'start it with `npm run services -- up` or set AVA_REDIS_URL',
      cause,
    });
  }
}
