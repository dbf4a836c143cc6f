import type { Logger } from '../logging/logger.js';

/** How a started subsystem is stopped: gracefully, and (optionally) at once when the grace period has passed. */
export interface Stoppable {
  stop(): Promise<void>;
  /** Drops what `stop` would wait for (connections), after the grace period; absent: nothing to drop. */
  abort?(): Promise<void> | void;
}

/** A subsystem to start: its name, how it starts, and how what it started is stopped. */
export interface Subsystem<T> {
  name: string;
  start(): Promise<T> | T;
  stopping(value: T): Stoppable;
}

/** A subsystem whose object is made by `create`, started by its `start()` and stopped by its `stop()`. */
export function service<T extends { start(): unknown; stop(): Promise<void> }>(
  name: string,
  create: () => T,
): Subsystem<T> {
  return {
    name,
    start: async () => {
      const value = create();
      await value.start();
      return value;
    },
    stopping: (value) => ({ stop: () => value.stop() }),
  };
}

/**
 * The subsystems a process started, in order, so that they stop in reverse: what started last (and depends on the
 * rest) stops first. A start that fails stops what had started before it.
 */
export class Subsystems {
  private readonly started: Array<{ name: string } & Stoppable> = [];

  /** `graceMs`: how long a stop may take before the rest is aborted. */
  constructor(
    private readonly log: Logger,
    private readonly graceMs: number,
  ) {}

  /** Starts one subsystem and records how it stops; if `start` throws, the ones before it are stopped first. */
  async start<T>({ name, start, stopping }: Subsystem<T>): Promise<T> {
    let value: T;
    try {
      value = await start();
    } catch (err) {
      await this.stopAll().catch((stopErr: unknown) =>
        this.log.warn({ err: stopErr }, `stopping after ${name} failed to start did not finish`),
      );
      throw err;
    }
    this.started.push({ name, ...stopping(value) });
    return value;
  }

  /**
   * Stops every subsystem, last started first. If that takes longer than the grace period (Redis or the database not
   * answering), the ones not yet stopped are aborted instead, and the graceful stop that was under way is left to fail
   * on its own (logged).
   */
  async stopAll(): Promise<'stopped' | 'aborted'> {
    const { graceMs } = this;
    const pending = this.started.splice(0).reverse();
    let next = 0;
    const graceful = (async () => {
      for (; next < pending.length; next++) await pending[next].stop();
    })();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), graceMs)));
    const outcome = await Promise.race([graceful.then(() => 'done' as const), expired]);
    clearTimeout(timer);
    if (outcome === 'done') return 'stopped';
    const stuck = pending[next]?.name;
    this.log.error(
      { graceMs, stuck },
      'shutdown grace period passed with work unfinished (Redis or the database not answering); aborting the rest',
    );
    graceful.catch((err: unknown) => this.log.warn({ err }, 'an unfinished shutdown step failed once aborted'));
    for (const s of pending.slice(next)) await s.abort?.();
    return 'aborted';
  }
}
