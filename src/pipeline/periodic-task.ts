/**
 * Runs a background task every `intervalMs`, one run at a time (a tick that comes while a run goes on is skipped),
 * without keeping the process alive. The task must not reject: it logs its own failures and is tried again at the
 * next tick.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** Starts the ticks. */
  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the ticks and waits for a run in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One run now, or the one in progress. */
  runOnce(): Promise<void> {
    this.running ??= this.task().finally(() => (this.running = undefined));
    return this.running;
  }
}
