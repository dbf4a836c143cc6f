import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';

/** A job as the pipeline sees it; BullMQ's own job object stays in `queue/`. */
export interface QueuedJob {
  readonly id: string;
  /** The producer's payload, unchecked. */
  readonly data: unknown;
  /** Enqueue time, in ms since the epoch. */
  readonly timestamp: number;
  /** Attempts that failed before this delivery. */
  readonly attemptsMade: number;
  /** Times the job was taken over from a worker that died or lost its lock. */
  readonly stalledCounter: number;
  /** `<prefix>:<name>` of its queue, which names its keys (its log). */
  readonly queueQualifiedName: string;
}

/** Jobs taken together and held under one lock token. */
export interface TakenBatch {
  /** The lock token BullMQ holds the jobs under, and the batch's `batchId` in log lines: one id for both. */
  readonly id: string;
  readonly jobs: readonly QueuedJob[];
}

/** Batch collection settings. */
export interface CollectorOptions {
  queueName: string;
  prefix: string;
  /** Most jobs per batch. */
  batchSize: number;
  /** Longest wait for a batch to fill once its first job arrived, in ms. */
  batchWaitMs: number;
  /** Job lock duration, in ms. */
  lockDurationMs: number;
  /** Stalled-job check period, in ms. */
  stalledIntervalMs: number;
  /** Times a job may stall before it fails. */
  maxStalledCount: number;
}

/** How long the first `getNextJob` of a batch blocks, in seconds; bounds shutdown latency when the queue is idle. */
const BLOCK_SECONDS = 1;
/** Poll period while a started batch is filling. */
const FILL_POLL_MS = 2;

/**
 * The worker's side of the queue: take a batch, keep its locks, acknowledge each job. Open-source BullMQ has no batch
 * consumer, so this drives a processor-less `Worker` by hand: it blocks for the first job, then takes more until the
 * batch is full or `batchWaitMs` has passed. The caller keeps the locks alive (see {@link LockKeeper}) until it
 * acknowledges; the stalled-job checker runs here so that jobs of a worker that died go back to waiting and are taken
 * over.
 */
export class BatchCollector {
  private readonly worker: Worker;
  /** BullMQ's job behind each job handed out; dropped with the job. */
  private readonly leased = new WeakMap<QueuedJob, Job>();
  private batchSeq = 0;

  constructor(
    connection: Redis,
    private readonly opts: CollectorOptions,
  ) {
    this.worker = new Worker(opts.queueName, null, {
      connection,
      prefix: opts.prefix,
      autorun: false,
      drainDelay: BLOCK_SECONDS,
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.stalledIntervalMs,
      maxStalledCount: opts.maxStalledCount,
      name: `ava-${randomUUID().slice(0, 8)}`,
    });
  }

  /** This consumer's id, as BullMQ and the workers' heartbeats name it. */
  get consumerId(): string {
    return this.worker.id;
  }

  /** Reports errors of the queue's connections (they are retried; this is for the logs). */
  onError(listener: (err: Error) => void): void {
    this.worker.on('error', listener);
  }

  /** Waits for the connections and starts the stalled-job checker. */
  async start(): Promise<void> {
    await this.worker.waitUntilReady();
    await this.worker.startStalledCheckTimer();
  }

  /** The next batch; undefined when nothing arrived within the block time or the collector is closing. */
  async next(): Promise<TakenBatch | undefined> {
    const token = `${this.worker.id}:${++this.batchSeq}`;
    const first = await this.worker.getNextJob(token, { block: true });
    if (!first) return undefined;
    const jobs = [this.lease(first)];
    const deadline = Date.now() + this.opts.batchWaitMs;
    try {
      while (jobs.length < this.opts.batchSize) {
        const job = await this.worker.getNextJob(token, { block: false });
        if (job) {
          jobs.push(this.lease(job));
          continue;
        }
        const left = deadline - Date.now();
        if (left <= 0) break;
        await sleep(Math.min(FILL_POLL_MS, left));
      }
    } catch (err) {
      await this.handBack(jobs, token, err);
    }
    return { id: token, jobs };
  }

  /**
   * A batch that could not be filled (Redis answered a take with an error) hands the jobs it already took back to the
   * queue, so that they do not wait for their locks to expire; then the error is thrown. Jobs that cannot be handed
   * back either are delivered again by the stalled-job checker once their locks expire.
   */
  private async handBack(jobs: readonly QueuedJob[], token: string, err: unknown): Promise<never> {
    const results = await Promise.allSettled(jobs.map((j) => this.bullJob(j).moveToWait(token)));
    const stuck = results.filter((r) => r.status === 'rejected').length;
    const message = `taking a batch failed after ${jobs.length} job(s): ${(err as Error).message}`;
    throw new Error(
      stuck
        ? `${message}; ${stuck} could not be handed back and wait for their locks to expire`
        : `${message}; they were handed back`,
      { cause: err },
    );
  }

  /** Extends the locks of every job of a batch, in one Redis call. */
  async extendLocks(batch: TakenBatch, durationMs: number): Promise<void> {
    await this.worker.extendJobLocks(
      batch.jobs.map((j) => j.id),
      batch.jobs.map(() => batch.id),
      durationMs,
    );
  }

  /**
   * Hands a job back to the queue, to be taken again after `delayMs`; not an attempt (its attempts are unchanged).
   * Rejects when its lock was lost.
   */
  async defer(batch: TakenBatch, job: QueuedJob, delayMs: number): Promise<void> {
    await this.bullJob(job).moveToDelayed(Date.now() + delayMs, batch.id);
  }

  /** Acknowledges a job as done; rejects when its lock was lost (another worker took it over). */
  async complete(batch: TakenBatch, job: QueuedJob, result: Record<string, unknown>): Promise<void> {
    await this.bullJob(job).moveToCompleted(result, batch.id, false);
  }

  /**
   * Fails a job. With `retry` it goes back to the queue for another attempt after the backoff (until its attempts
   * run out); without, it goes to the failed set at once.
   */
  async fail(batch: TakenBatch, job: QueuedJob, reason: string, { retry }: { retry: boolean }): Promise<void> {
    await this.bullJob(job).moveToFailed(retry ? new Error(reason) : new UnrecoverableError(reason), batch.id, false);
  }

  private lease(job: Job): QueuedJob {
    const queued: QueuedJob = {
      id: String(job.id),
      data: job.data as unknown,
      timestamp: job.timestamp,
      attemptsMade: job.attemptsMade,
      stalledCounter: job.stalledCounter ?? 0,
      queueQualifiedName: job.queueQualifiedName,
    };
    this.leased.set(queued, job);
    return queued;
  }

  private bullJob(job: QueuedJob): Job {
    const bull = this.leased.get(job);
    if (!bull) throw new Error(`job ${job.id} was not taken by this collector`);
    return bull;
  }

  /** Stops taking jobs and closes the worker's connections; jobs in flight must be acknowledged first. */
  async close(): Promise<void> {
    await this.worker.close();
  }
}
