import type { Redis } from 'ioredis';
import type { RedisKeys } from '../queue/redis-keys.js';
import type { QueueView } from '../queue/queue-view.js';
import { ReplyCounters } from './reply-counters.js';
import { liveWorkers } from './worker-heartbeat.js';

/**
 * The service at a glance, for the dashboard, `GET /v1/stats` and `ava stats`: queue depth by state, live workers,
 * reply counts and the median enqueue-to-stored latency of the last 50 replies. Everything comes from Redis
 * (counters kept as replies are stored), so its cost does not grow with the stored data.
 */
export async function collectStats(queue: QueueView, redis: Redis, keys: RedisKeys) {
  const [counts, workers, { replied, failed, latenciesMs }] = await Promise.all([
    queue.counts(),
    liveWorkers(redis, keys.workers),
    new ReplyCounters(redis, keys).read(),
  ]);
  const latencies = [...latenciesMs].sort((a, b) => a - b);
  return {
    at: new Date().toISOString(),
    queue: counts,
    workers: workers.map(({ metrics: _m, ...w }) => w),
    replies: { replied, failed },
    latencyMs: { p50: latencies[Math.floor(latencies.length / 2)] ?? null, recent: latencies.length },
  };
}
