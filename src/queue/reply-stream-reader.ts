import type { Redis } from 'ioredis';
import { PeriodicTask } from '../tasks/periodic-task.js';
import type { RedisKeys } from './redis-keys.js';
import type { StreamEntry, StreamEvent } from './reply-stream.js';

/** Entries read per XRANGE call. */
const PAGE = 500;

/** A reader's hold on one message's stream. */
export interface StreamFollow {
  /** Reads now; resolves once every entry in the stream at this moment has been delivered. */
  catchUp(): Promise<void>;
  /** Stops delivery and frees the follower. */
  close(): void;
}

/** Callbacks of one follower. */
export interface FollowHandlers {
  onEntry(entry: StreamEntry): void;
  /** A read failed; the follower keeps trying at its next wake-up. */
  onError(err: unknown): void;
}

interface Follower {
  messageId: string;
  after: string | undefined;
  reading: Promise<void> | undefined;
  again: boolean;
  closed: boolean;
  handlers: FollowHandlers;
}

/**
 * API and CLI side: replays a message's stream from its first entry and then follows it live. One pattern
 * subscription per process wakes the followers of a message when its worker appends; each follower then reads what
 * is new with XRANGE from the last id it delivered, so no entry is missed or repeated whatever the timing. A slow
 * periodic read covers a notification lost while the subscriber reconnects.
 */
export class ReplyStreamReader {
  private readonly followers = new Map<string, Set<Follower>>();
  private subscribed: Promise<unknown> | undefined;
  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly keys: RedisKeys,
    private readonly pollMs = 1_000,
  ) {
    const base = this.keys.replyStreamPrefix;
    subscriber.on('pmessage', (_pattern: string, channel: string) => {
      for (const f of this.followers.get(channel.slice(base.length)) ?? []) void this.read(f);
    });
  }

  /** Whether a message has a stream in Redis now. */
  async exists(messageId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.replyStream(messageId))) === 1;
  }

  /** Delivers every entry of `messageId`'s stream after `after` (from the first when absent), then new ones live. */
  async follow(messageId: string, after: string | undefined, handlers: FollowHandlers): Promise<StreamFollow> {
    // A subscription that failed (Redis away) is tried again by the next follower rather than remembered.
    this.subscribed ??= this.subscriber.psubscribe(`${this.keys.replyStreamPrefix}*`).catch((err: unknown) => {
      this.subscribed = undefined;
      throw err;
    });
    await this.subscribed;
    const f: Follower = { messageId, after, reading: undefined, again: false, closed: false, handlers };
    const set = this.followers.get(messageId) ?? new Set();
    set.add(f);
    this.followers.set(messageId, set);
    const poll = new PeriodicTask(() => this.read(f), this.pollMs);
    poll.start();
    return {
      catchUp: () => this.read(f),
      close: () => {
        f.closed = true;
        poll.cancel();
        set.delete(f);
        if (set.size === 0 && this.followers.get(messageId) === set) this.followers.delete(messageId);
      },
    };
  }

  /**
   * Reads until nothing new is left. A wake-up during a read makes that read go round once more instead of running a
   * second one beside it, and gets the same promise.
   */
  private read(f: Follower): Promise<void> {
    if (f.reading) {
      f.again = true;
      return f.reading;
    }
    f.reading = this.readLoop(f).finally(() => (f.reading = undefined));
    return f.reading;
  }

  private async readLoop(f: Follower): Promise<void> {
    try {
      do {
        f.again = false;
        let page: Array<[string, string[]]>;
        do {
          page = await this.redis.xrange(
            this.keys.replyStream(f.messageId),
            f.after ? `(${f.after}` : '-',
            '+',
            'COUNT',
            PAGE,
          );
          for (const [id, fields] of page) {
            if (f.closed) return;
            f.after = id;
            const event = parseEvent(fields);
            if (event) f.handlers.onEntry({ id, event });
          }
        } while (page.length === PAGE);
      } while (f.again && !f.closed);
    } catch (err) {
      if (!f.closed) f.handlers.onError(err);
    }
  }
}

function parseEvent(fields: string[]): StreamEvent | null {
  const i = fields.indexOf('e');
  if (i < 0 || i % 2 !== 0) return null;
  const event = JSON.parse(fields[i + 1]) as StreamEvent;
  return event.type === 'token' || event.type === 'done' ? event : null;
}
