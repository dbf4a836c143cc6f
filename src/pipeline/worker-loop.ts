import { UnrecoverableError } from 'bullmq';
import { StorageError, errorCodeOf, errorMessageOf } from '../errors/errors.js';
import type { Logger } from '../logging/logger.js';
import type { BatchCollector, LeasedJob } from '../queue/batch-collector.js';
import { LockKeeper } from '../queue/lock-keeper.js';
import type { BatchProcessor } from './batch-processor.js';

/**
 * The worker's main loop: take a batch, keep its locks alive, process it, and only then acknowledge each job.
 * A reply is always stored before its job completes; a storage failure fails every job of the batch back to BullMQ,
 * which retries it with exponential backoff. `stop()` lets the batch in flight finish, then closes.
 */
export class WorkerLoop {
  private stopping = false;
  private running: Promise<void> | undefined;
  private batchSeq = 0;
  private readonly locks: LockKeeper;

  constructor(
    private readonly collector: BatchCollector,
    private readonly processor: BatchProcessor,
    private readonly log: Logger,
    lockDurationMs: number,
  ) {
    this.locks = new LockKeeper(collector.worker, lockDurationMs, log);
  }

  /** Starts the loop; resolves once the collector is ready. */
  async start(): Promise<void> {
    await this.collector.start();
    this.running = this.loop();
  }

  /** Stops pulling, finishes the batch in flight, closes the queue connections. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.collector.close();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let batch: LeasedJob[];
      try {
        batch = await this.collector.next();
      } catch (err) {
        this.log.error({ err }, 'pulling jobs failed; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      if (batch.length > 0) await this.handle(batch);
    }
  }

  private async handle(batch: LeasedJob[]): Promise<void> {
    const log = this.log.child({ batchId: `${this.collector.worker.id}:${++this.batchSeq}`, size: batch.length });
    this.locks.start(batch);
    log.info('batch taken');
    try {
      const outcomes = await this.processor.process(batch.map((b) => b.job), log);
      await Promise.all(
        batch.map(async ({ job, token }, i) => {
          const o = outcomes[i];
          const jobLog = log.child({ messageId: o.messageId, jobId: job.id });
          try {
            if (o.kind === 'failed') {
              jobLog.warn({ code: o.error.code, reason: o.error.message }, 'message failed; failed reply stored');
              // The reason is stored on the reply; the job must not retry.
              await job.moveToFailed(new UnrecoverableError(`${o.error.code}: ${o.error.message}`), token, false);
            } else {
              jobLog.debug({ outcome: o.kind }, 'job completed');
              await job.moveToCompleted({ status: o.kind === 'replied' ? 'replied' : 'already-stored' }, token, false);
            }
          } catch (err) {
            // The lock was lost (the job stalled and was handed over); the new owner finds the stored reply.
            jobLog.warn({ err }, 'acknowledging job failed');
          }
        }),
      );
    } catch (err) {
      const retry = err instanceof StorageError;
      log.error({ err, code: errorCodeOf(err) }, retry ? 'batch failed to store; jobs go back for retry with backoff' : 'batch failed');
      await Promise.all(
        batch.map(({ job, token }) =>
          job.moveToFailed(new Error(`${errorCodeOf(err)}: ${errorMessageOf(err)}`), token, false).catch((ackErr: unknown) => {
            log.warn({ err: ackErr, jobId: job.id }, 'failing job back to the queue failed');
          }),
        ),
      );
    } finally {
      this.locks.stop();
    }
  }
}
