import type { ReplyStreamReader, StreamFollow } from './reply-stream-reader.js';

/**
 * Tells a waiter when to read the database for replies: it follows the messages' reply streams and wakes the wait
 * when one of them gets its `done` entry (written by the worker after it stored the reply). The database decides
 * whether the reply is there; the signal only says when to look, and `wait` also ends after its fallback period, so
 * a `done` lost with Redis's data costs a delay, never the reply.
 */
export class ReplyDoneSignal {
  private signalled = false;
  private wake: (() => void) | undefined;
  /** The first error the streams reported; the fallback reads go on regardless. */
  error: unknown;

  private constructor(private follows: StreamFollow[] = []) {}

  /** Follows the reply streams of `messageIds`; a `done` already in a stream signals at once. */
  static async follow(streams: ReplyStreamReader, messageIds: readonly string[]): Promise<ReplyDoneSignal> {
    const signal = new ReplyDoneSignal();
    signal.follows = await Promise.all(
      messageIds.map((id) =>
        streams.follow(id, undefined, {
          onEntry: ({ event }) => {
            if (event.type === 'done') signal.notify();
          },
          onError: (err) => (signal.error ??= err),
        }),
      ),
    );
    return signal;
  }

  /** Resolves at the next `done` (at once if one came since the last wait), or after `fallbackMs`. */
  async wait(fallbackMs: number): Promise<void> {
    if (!this.signalled) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, fallbackMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.wake = undefined;
    this.signalled = false;
  }

  /** Stops following the streams. */
  close(): void {
    for (const f of this.follows) f.close();
  }

  private notify(): void {
    this.signalled = true;
    this.wake?.();
  }
}
