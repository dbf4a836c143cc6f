import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';

/** A job taken from the queue, with the lock token that owns it. */
export interface LeasedJob {
  job: Job;
  token: string;
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
 * Pulls jobs in batches. Open-source BullMQ has no batch consumer, so this drives a processor-less `Worker` by hand:
 * it blocks for the first job, then takes more until the batch is full or `batchWaitMs` has passed. The caller owns
 * the jobs' locks from then on (see {@link LockKeeper}); the stalled-job checker runs here so that jobs of a worker
 * that died are moved back to waiting and taken over.
 */
export class BatchCollector {
  /** The processor-less BullMQ worker, for lock extension and acknowledgement. */
  readonly worker: Worker;
  private batchSeq = 0;

  constructor(connection: Redis, private readonly opts: CollectorOptions) {
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

  /** Waits for the connections and starts the stalled-job checker. */
  async start(): Promise<void> {
    await this.worker.waitUntilReady();
    await this.worker.startStalledCheckTimer();
  }

  /** The next batch: empty when nothing arrived within the block time or the collector is closing. */
  async next(): Promise<LeasedJob[]> {
    const token = `${this.worker.id}:${++this.batchSeq}`;
    const first = await this.worker.getNextJob(token, { block: true });
    if (!first) return [];
    const batch: LeasedJob[] = [{ job: first, token }];
    const deadline = Date.now() + this.opts.batchWaitMs;
    while (batch.length < this.opts.batchSize) {
      const job = await this.worker.getNextJob(token, { block: false });
      if (job) {
        batch.push({ job, token });
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(FILL_POLL_MS, left));
    }
    return batch;
  }

  /** Stops taking jobs and closes the worker's connections; jobs in flight must be acknowledged first. */
  async close(): Promise<void> {
    await this.worker.close();
  }
}
