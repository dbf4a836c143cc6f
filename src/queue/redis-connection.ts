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

/** Opens a Redis connection for BullMQ from a URL (`redis://` or `rediss://` for TLS) and checks it answers. */
export async function connectRedis(url: string, extra: RedisOptions = {}): Promise<Redis> {
  const redis = new Redis(url, { ...BULLMQ_REDIS_OPTIONS, lazyConnect: true, ...extra });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (cause) {
    redis.disconnect();
    throw new ServiceUnavailableError(`Redis at ${redactUrl(url)} is unreachable: ${(cause as Error).message}`, {
      hint: 'start it with `npm run services -- up` or set AVA_REDIS_URL',
      cause,
    });
  }
}
