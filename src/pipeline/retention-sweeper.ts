import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';
import { withRedisLock } from '../queue/redis-lock.js';
import type { Retention } from '../storage/retention.js';

/**
 * Runs {@link Retention.sweep} every `intervalMs` in one worker at a time (a Redis lock per database), on servers
 * without TTL indexes. A failed sweep is logged and tried again at the next interval; nothing on the hot path waits
 * for it.
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly retention: Retention,
    private readonly redis: Redis,
    private readonly lockKey: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Starts the periodic sweeps (none when the server enforces retention itself). */
  start(): void {
    if (this.retention.mode !== 'sweep') return;
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the sweeps and waits for one in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep, if no other worker is sweeping; never rejects. */
  async runOnce(): Promise<void> {
    if (this.running) return;
    const started = performance.now();
    this.running = withRedisLock(this.redis, this.lockKey, Math.max(this.intervalMs, 60_000), () => this.retention.sweep())
      .then(
        (deleted) => deleted && this.log.info({ deleted, ms: Math.round(performance.now() - started) }, 'retention sweep done'),
        (err: unknown) => this.log.warn({ err }, 'retention sweep failed; trying again at the next interval'),
      )
      .finally(() => (this.running = undefined));
    await this.running;
  }
}
