import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { messageJobId, type RedisKeys } from './redis-keys.js';

/** Jobs of the queue by state. */
export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
}

/** What the queue knows of one job that is still in it. */
export interface QueuedJobInfo {
  /** `active`: a worker holds it; `waiting`: not taken yet (or delayed for a retry). */
  state: 'active' | 'waiting';
  queuedAt: Date;
  /** When a worker first took it. */
  startedAt?: Date;
  /** Attempts made so far. */
  attempts: number;
}

/**
 * A read-only view of the message queue for the API, the CLI, the dashboard and metrics: counts, one job's state,
 * the oldest waiting job, connected workers. BullMQ stays inside `queue/`.
 */
export class QueueView {
  constructor(
    private readonly queue: Queue,
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** `<prefix>` and `<name>` of the queue, which name its Redis keys. */
  get names(): { prefix: string; name: string } {
    return { prefix: this.queue.opts.prefix ?? 'bull', name: this.queue.name };
  }

  /** Jobs by state. */
  async counts(): Promise<QueueCounts> {
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed');
    return {
      // With fair share, jobs wait in BullMQ's prioritized set rather than its wait list.
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
      completed: c.completed ?? 0,
    };
  }

  /** Whether the queue holds the job of this message, in any state. */
  async has(messageId: string): Promise<boolean> {
    return (await this.queue.getJobState(messageJobId(messageId))) !== 'unknown';
  }

  /** A message's job not answered yet (waiting, delayed or active); undefined when it is not in the queue or finished. */
  async pending(messageId: string): Promise<QueuedJobInfo | undefined> {
    const job = await this.queue.getJob(messageJobId(messageId));
    if (!job) return undefined;
    const state = await job.getState();
    if (
      state !== 'active' &&
      state !== 'waiting' &&
      state !== 'delayed' &&
      state !== 'prioritized' &&
      state !== 'waiting-children'
    )
      return undefined;
    return {
      state: state === 'active' ? 'active' : 'waiting',
      queuedAt: new Date(job.timestamp),
      ...(job.processedOn ? { startedAt: new Date(job.processedOn) } : {}),
      attempts: job.attemptsMade,
    };
  }

  /**
   * Enqueue time of the oldest message not answered yet (waiting, or taken and not stored); undefined when there is
   * none. The oldest of each tenant heads its pending set (by enqueue time); with fair share the prioritized set is
   * ordered by rank, not age, so it cannot tell. A job added without the producer is found at the wait list's head.
   */
  async oldestUnansweredSince(): Promise<Date | undefined> {
    const [first] = await this.queue.getJobs(['waiting'], 0, 0, true);
    const sets = await this.redis.smembers(this.keys.tenantsPending);
    const pipeline = this.redis.pipeline();
    for (const key of sets) pipeline.zrange(key, 0, 0, 'WITHSCORES');
    const heads = sets.length > 0 ? ((await pipeline.exec()) ?? []) : [];
    const times = heads.flatMap(([err, r]) => (!err && (r as string[])[1] ? [Number((r as string[])[1]) / 1000] : []));
    if (first) times.push(first.timestamp);
    return times.length > 0 ? new Date(Math.min(...times)) : undefined;
  }

  /** Workers connected to the queue. */
  async workerCount(): Promise<number> {
    return this.queue.getWorkersCount();
  }
}
