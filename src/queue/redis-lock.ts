import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisScripts } from '../redis/redis-scripts.js';

/**
 * Runs `task` only if no other process holds `key` (held at most `ttlMs`, so a holder that dies frees it). Resolves
 * with the task's result, or null when another process holds the lock. Only the holder's own lock is released: one
 * that expired and was taken by another process stays.
 */
export async function withRedisLock<T>(
  redis: Redis,
  key: string,
  ttlMs: number,
  task: () => Promise<T>,
): Promise<T | null> {
  const token = randomUUID();
  if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return null;
  try {
    return await task();
  } finally {
    await RedisScripts.on(redis).avaLockRelease(key, token);
  }
}
