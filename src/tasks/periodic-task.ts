/**
 * Runs a background task every `intervalMs`, one run at a time (a tick that comes while a run goes on is skipped),
 * without keeping the process alive: the one way AVA runs anything periodically (heartbeats, lock renewal, knowledge
 * refresh, reconciliation, retention sweeps, stream polls, SSE keep-alives). The task must not reject: it logs its
 * own failures and is tried again at the next tick.
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
    this.cancel();
    await this.running;
  }

  /** Stops the ticks at once; a run in progress finishes on its own. */
  cancel(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One run now, or the one in progress. */
  runOnce(): Promise<void> {
    this.running ??= this.task().finally(() => (this.running = undefined));
    return this.running;
  }
}
