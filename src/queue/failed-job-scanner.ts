import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';
import { withRedisLock } from './redis-lock.js';

/** Jobs read per page of the failed set. */
const PAGE = 200;

/** A job in BullMQ's failed set, as the reconciler needs it. */
export interface FailedJob {
  id: string;
  /** `<prefix>:<queue name>`. */
  queueQualifiedName: string;
  data: unknown;
  failedReason: string;
  attemptsMade: number;
  /** When the producer enqueued it. */
  timestamp: number;
  /** When a worker last took it, if any did. */
  processedOn?: number;
}

/**
 * Walks BullMQ's failed set (a sorted set scored by the time each job failed) in order, from a cursor shared by
 * every worker of the queue in Redis, so each pass reads only what failed since the last one. A lock lets one worker
 * at a time walk it. Jobs that failed in the same millisecond as the cursor are read again after a restart, so the
 * caller's work must be idempotent.
 */
export class FailedJobScanner {
  private readonly queue: Queue;
  private readonly cursorKey: string;
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys,
  ) {
    this.queue = new Queue(keys.queueName, { connection: redis, prefix: keys.prefix });
    ({ cursor: this.cursorKey, lock: this.lockKey } = keys.reconciler);
  }

  /**
   * If no other worker holds the walk (lock for `lockMs`), hands each page of jobs that failed since the cursor to
   * `handle` and moves the cursor past it once `handle` resolves. A page whose `handle` throws stays unread for the
   * next pass. Returns how many jobs were handed over, or null when another worker holds the walk.
   */
  async scan(lockMs: number, handle: (jobs: FailedJob[]) => Promise<void>): Promise<number | null> {
    return withRedisLock(this.redis, this.lockKey, lockMs, async () => {
      let cursor = Number((await this.redis.get(this.cursorKey)) ?? 0);
      let offset = 0;
      let total = 0;
      for (;;) {
        const flat = await this.redis.zrangebyscore(
          this.queue.keys.failed,
          cursor,
          '+inf',
          'WITHSCORES',
          'LIMIT',
          offset,
          PAGE,
        );
        if (flat.length === 0) break;
        const entries: Array<{ id: string; score: number }> = [];
        for (let i = 0; i < flat.length; i += 2) entries.push({ id: flat[i], score: Number(flat[i + 1]) });
        const jobs = (await Promise.all(entries.map((e) => Job.fromId(this.queue, e.id)))).flatMap((j) =>
          j ? [toFailedJob(j)] : [],
        );
        await handle(jobs);
        total += jobs.length;
        const last = entries[entries.length - 1].score;
        // Many jobs failing in one millisecond: page through them by offset, or the walk would never pass them.
        offset = last === cursor ? offset + entries.length : entries.filter((e) => e.score === last).length;
        cursor = last;
        await this.redis.set(this.cursorKey, String(cursor));
        if (entries.length < PAGE) break;
      }
      return total;
    });
  }

  /** Closes the queue handle (not the shared connection). */
  async close(): Promise<void> {
    await this.queue.close();
  }
}

function toFailedJob(job: Job): FailedJob {
  return {
    id: String(job.id),
    queueQualifiedName: job.queueQualifiedName,
    data: job.data,
    failedReason: job.failedReason ?? '',
    attemptsMade: job.attemptsMade,
    timestamp: job.timestamp,
    ...(job.processedOn ? { processedOn: job.processedOn } : {}),
  };
}
