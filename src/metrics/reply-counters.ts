import type { Redis } from 'ioredis';
import type { ReplyDocument } from '../storage/reply-document.js';
import type { RedisKeys } from '../queue/redis-keys.js';

/** Enqueue-to-stored latencies kept for the dashboard's median. */
const RECENT = 50;

/**
 * Reply counts by status and the latest enqueue-to-stored latencies, kept in Redis as replies are stored, so that
 * the dashboard, `/v1/stats` and `ava stats` read two keys instead of counting documents. Counts start when Redis's
 * data does (a flushed Redis starts them again); the database stays the record.
 */
export class ReplyCounters {
  private readonly keys: { counts: string; latencies: string };

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys,
  ) {
    this.keys = keys.replyCounts;
  }

  /** Counts replies newly stored (each once: callers pass only what their insert added). */
  async record(stored: readonly ReplyDocument[]): Promise<void> {
    if (stored.length === 0) return;
    const replied = stored.filter((d) => d.status === 'replied').length;
    const pipeline = this.redis.pipeline();
    if (replied > 0) pipeline.hincrby(this.keys.counts, 'replied', replied);
    if (stored.length > replied) pipeline.hincrby(this.keys.counts, 'failed', stored.length - replied);
    pipeline.lpush(
      this.keys.latencies,
      ...stored.slice(-RECENT).map((d) => Math.max(0, d.createdAt.getTime() - d.timings.queuedAt.getTime())),
    );
    pipeline.ltrim(this.keys.latencies, 0, RECENT - 1);
    await pipeline.exec();
  }

  /** Replied and failed counts, and the latest latencies in ms (newest first). */
  async read(): Promise<{ replied: number; failed: number; latenciesMs: number[] }> {
    const [counts, latencies] = await Promise.all([
      this.redis.hgetall(this.keys.counts),
      this.redis.lrange(this.keys.latencies, 0, RECENT - 1),
    ]);
    return {
      replied: Number(counts.replied ?? 0),
      failed: Number(counts.failed ?? 0),
      latenciesMs: latencies.map(Number),
    };
  }
}
