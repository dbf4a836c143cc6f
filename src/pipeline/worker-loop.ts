import { errorCodeOf, errorKindOf, errorMessageOf } from '../errors/errors.js';
import type { Logger } from '../logging/logger.js';
import type { BatchCollector, TakenBatch } from '../queue/batch-collector.js';
import { LockKeeper } from '../queue/lock-keeper.js';
import type { BatchProcessor } from './batch-processor.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';

/**
 * Longest a message waiting for an earlier one of its conversation stays parked, in ms. It is woken as soon as that
 * one is released (see `ConversationOrder.wake`); this bound only matters when the wake-up is lost, for example when
 * the releasing worker dies between the two. It is long because a parked message that comes back by it while the
 * message before it is still queued behind a burst is only parked again: in a 10,000-message burst over 500
 * conversations, a 5 s bound delivered each message four times on average.
 */
export const PARK_MS = 60_000;

/** Flow control of the loop. */
export interface WorkerLoopOptions {
  lockDurationMs: number;
  /** Queue batches in flight at once; more than one lets new messages join a continuous-batching generator. */
  maxInflightBatches: number;
  /** Back-pressure from the generator: resolves when it can start new requests at once. */
  whenCapacity?: () => Promise<void>;
  /** Counts whole-batch failures by code. */
  metrics?: WorkerMetrics;
}

/**
 * The worker's main loop: take a batch, keep its locks alive, process it, and only then acknowledge each job.
 * A reply is always stored before its job completes. A batch that fails transiently (Redis or the database away)
 * fails every job back to BullMQ, which retries it with exponential backoff; one that fails permanently fails them for
 * good, and the failed-job reconciler stores their `failed` replies. Up to `maxInflightBatches` batches run at once, and no batch is taken
 * while the generator is full (back-pressure: jobs wait in Redis, not in memory). `stop()` lets the batches in
 * flight finish, then closes.
 */
export class WorkerLoop {
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly collector: BatchCollector,
    private readonly processor: BatchProcessor,
    private readonly log: Logger,
    private readonly opts: WorkerLoopOptions,
  ) {}

  /** Starts the loop; resolves once the collector is ready. */
  async start(): Promise<void> {
    await this.collector.start();
    this.running = this.loop();
  }

  /** Stops pulling, finishes the batches in flight, closes the queue connections. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.collector.close();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.inflight.size >= this.opts.maxInflightBatches) {
        await Promise.race(this.inflight);
        continue;
      }
      if (this.inflight.size > 0 && this.opts.whenCapacity) await this.opts.whenCapacity();
      let batch: TakenBatch | undefined;
      try {
        batch = await this.collector.next();
      } catch (err) {
        this.log.error({ err }, 'pulling jobs failed; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      if (!batch) continue;
      const done: Promise<void> = this.handle(batch).finally(() => this.inflight.delete(done));
      this.inflight.add(done);
    }
    await Promise.all(this.inflight);
  }

  private async handle(batch: TakenBatch): Promise<void> {
    const log = this.log.child({ batchId: batch.id, size: batch.jobs.length });
    const locks = new LockKeeper(this.collector, this.opts.lockDurationMs, log);
    locks.start(batch);
    log.info('batch taken');
    try {
      const outcomes = await this.processor.process(batch.jobs, log);
      const parked: Array<{ messageId: string; conversationId: string }> = [];
      await Promise.all(
        batch.jobs.map(async (job, i) => {
          const o = outcomes[i];
          const jobLog = log.child({ ...(o.kind === 'refused' ? {} : { messageId: o.messageId }), jobId: job.id });
          try {
            if (o.kind === 'refused') {
              jobLog.warn({ code: o.error.code, reason: o.error.message }, 'job refused; no reply can be keyed for it');
              this.opts.metrics?.failures.inc({ code: o.error.code });
              await this.collector.fail(batch, job, `${o.error.code}: ${o.error.message}`, { retry: false });
            } else if (o.kind === 'failed') {
              jobLog.warn({ code: o.error.code, reason: o.error.message }, 'message failed; failed reply stored');
              // The reason is stored on the reply; the job must not retry.
              await this.collector.fail(batch, job, `${o.error.code}: ${o.error.message}`, { retry: false });
            } else if (o.kind === 'deferred') {
              jobLog.debug('waiting for an earlier message of its conversation');
              await this.collector.defer(batch, job, PARK_MS);
              parked.push(o);
            } else {
              jobLog.debug({ outcome: o.kind }, 'job completed');
              await this.collector.complete(batch, job, { status: o.kind });
            }
          } catch (err) {
            // The lock was lost (the job stalled and was handed over); the new owner finds the stored reply.
            jobLog.warn({ err }, 'acknowledging job failed');
          }
        }),
      );
      // Parked first, then looked at: a release that came in between cannot go unnoticed (see ConversationOrder.wake).
      await this.processor
        .wake(parked)
        .catch((err: unknown) =>
          log.warn({ err, parked: parked.length }, `waking parked messages failed; they wait up to ${PARK_MS} ms`),
        );
    } catch (err) {
      // Retried only when trying again can help (Redis or the database away); a permanent failure is failed for good,
      // and the failed-job reconciler stores a `failed` reply for each job.
      const retry = errorKindOf(err) === 'transient';
      this.opts.metrics?.failures.inc({ code: errorCodeOf(err) }, batch.jobs.length);
      log.error(
        { err, code: errorCodeOf(err), retry },
        retry ? 'batch failed; jobs go back for retry with backoff' : 'batch failed for good; jobs are not retried',
      );
      await Promise.all(
        batch.jobs.map((job) =>
          this.collector
            .fail(batch, job, `${errorCodeOf(err)}: ${errorMessageOf(err)}`, { retry })
            .catch((ackErr: unknown) => {
              log.warn({ err: ackErr, jobId: job.id }, 'failing job back to the queue failed');
            }),
        ),
      );
    } finally {
      locks.stop();
    }
  }
}
