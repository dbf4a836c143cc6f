import type { Worker } from 'bullmq';
import type { Logger } from '../logging/logger.js';
import type { LeasedJob } from './batch-collector.js';

/**
 * Keeps the locks of a batch in flight alive: every half lock period it extends all of them in one Redis call.
 * Inference runs off the event loop (ONNX Runtime's thread pool), so the timer fires on time even mid-batch.
 */
export class LockKeeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly lockDurationMs: number,
    private readonly log: Logger,
  ) {}

  /** Starts renewing the locks of `batch` until {@link stop}. */
  start(batch: readonly LeasedJob[]): void {
    this.stop();
    const ids = batch.map((b) => b.job.id as string);
    const tokens = batch.map((b) => b.token);
    this.timer = setInterval(() => {
      this.worker.extendJobLocks(ids, tokens, this.lockDurationMs).catch((err: unknown) => {
        this.log.warn({ err, jobs: ids.length }, 'extending job locks failed; the stalled checker may hand these jobs to another worker');
      });
    }, Math.max(500, Math.floor(this.lockDurationMs / 2)));
    this.timer.unref();
  }

  /** Stops renewing. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
