import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Database } from '../storage/database.js';
import { liveWorkers } from './worker-heartbeat.js';

/**
 * The service at a glance, for the dashboard, `GET /v1/stats` and `ava stats`: queue depth by state, live workers,
 * reply counts and the median enqueue-to-stored latency of the last 50 replies.
 */
export async function collectStats(queue: Queue, redis: Redis, heartbeatKey: string, database: Database) {
  const [counts, workers, recent, replied, failed] = await Promise.all([
    queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'),
    liveWorkers(redis, heartbeatKey),
    database.replies.find({}, { projection: { createdAt: 1, 'timings.queuedAt': 1 } }).sort({ createdAt: -1 }).limit(50).toArray(),
    database.replies.countDocuments({ status: 'replied' }),
    database.replies.countDocuments({ status: 'failed' }),
  ]);
  const latencies = recent.map((d) => d.createdAt.getTime() - d.timings.queuedAt.getTime()).sort((a, b) => a - b);
  return {
    at: new Date().toISOString(),
    queue: counts,
    workers: workers.map(({ metrics: _m, ...w }) => w),
    replies: { replied, failed },
    latencyMs: { p50: latencies[Math.floor(latencies.length / 2)] ?? null, recent: latencies.length },
  };
}
