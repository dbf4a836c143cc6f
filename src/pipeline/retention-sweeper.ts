import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';
import { withRedisLock } from '../queue/redis-lock.js';
import type { Retention } from '../storage/retention.js';
import { PeriodicTask } from '../tasks/periodic-task.js';

/**
 * Runs {@link Retention.sweep} every `intervalMs` in one worker at a time (a Redis lock per database), where the
 * server cannot expire everything itself (no TTL indexes, or uploads to expire). A failed sweep is logged and tried
 * again at the next interval; nothing on the hot path waits for it.
 */
export class RetentionSweeper {
  private readonly periodic: PeriodicTask;

  constructor(
    private readonly retention: Retention,
    private readonly redis: Redis,
    private readonly lockKey: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {
    this.periodic = new PeriodicTask(() => this.sweep(), intervalMs);
  }

  /** Starts the periodic sweeps (none when the server enforces all retention itself). */
  start(): void {
    if (this.retention.needsSweeps) this.periodic.start();
  }

  /** Stops the sweeps and waits for one in progress. */
  async stop(): Promise<void> {
    await this.periodic.stop();
  }

  /** One sweep now (or the one in progress), if no other worker is sweeping; never rejects. */
  runOnce(): Promise<void> {
    return this.periodic.runOnce();
  }

  private async sweep(): Promise<void> {
    const started = performance.now();
    try {
      const deleted = await withRedisLock(this.redis, this.lockKey, Math.max(this.intervalMs, 60_000), () =>
        this.retention.sweep(),
      );
      if (deleted) this.log.info({ deleted, ms: Math.round(performance.now() - started) }, 'retention sweep done');
    } catch (err) {
      this.log.warn({ err }, 'retention sweep failed; trying again at the next interval');
    }
  }
}
