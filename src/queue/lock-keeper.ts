import type { Logger } from '../logging/logger.js';
import { PeriodicTask } from '../tasks/periodic-task.js';
import type { BatchCollector, TakenBatch } from './batch-collector.js';

/** A batch's locks are renewed for at most this many lock periods; a batch still running then is presumed hung. */
const MAX_HOLD_PERIODS = 10;

/**
 * Keeps the locks of a batch in flight alive: every half lock period it extends all of them in one Redis call.
 * Inference runs off the event loop (ONNX Runtime's thread pool), so the renewal runs on time even mid-batch.
 * Renewal stops after {@link MAX_HOLD_PERIODS} lock periods: a batch that hangs then lets its jobs go, and the
 * stalled-job checker hands them to a worker that can answer them (storing is idempotent if the hung one wakes up).
 */
export class LockKeeper {
  private renewal: PeriodicTask | undefined;

  constructor(
    private readonly collector: BatchCollector,
    private readonly lockDurationMs: number,
    private readonly log: Logger,
  ) {}

  /** Starts renewing the locks of `batch` until {@link stop} or the hold limit. */
  start(batch: TakenBatch): void {
    this.stop();
    const jobs = batch.jobs.length;
    const giveUpAt = Date.now() + MAX_HOLD_PERIODS * this.lockDurationMs;
    this.renewal = new PeriodicTask(
      async () => {
        if (Date.now() >= giveUpAt) {
          this.log.error(
            { jobs },
            `batch still running after ${MAX_HOLD_PERIODS} lock periods; releasing its locks so that another worker can take the jobs over`,
          );
          this.stop();
          return;
        }
        await this.collector.extendLocks(batch, this.lockDurationMs).catch((err: unknown) => {
          this.log.warn(
            { err, jobs },
            'extending job locks failed; the stalled checker may hand these jobs to another worker',
          );
        });
      },
      Math.max(500, Math.floor(this.lockDurationMs / 2)),
    );
    this.renewal.start();
  }

  /** Stops renewing. */
  stop(): void {
    this.renewal?.cancel();
    this.renewal = undefined;
  }
}
