import type { Redis } from 'ioredis';
import { storableText } from '../contract/storable-text.js';
import type { RedisKeys } from './redis-keys.js';
import { RedisScripts, type ScriptedRedis } from '../redis/redis-scripts.js';
import type { Logger } from '../logging/logger.js';

/**
 * One event of a message's reply stream. `attempt` names the worker pass that generated a token: a message retried
 * after a failure is generated again under a new attempt, and readers restart the text when the attempt changes.
 */
export type StreamEvent = { type: 'token'; text: string; attempt: string } | { type: 'done' };

/** An event with its Redis stream entry id (`<ms>-<seq>`), which orders entries and is the SSE event id. */
export interface StreamEntry {
  id: string;
  event: StreamEvent;
}

/** How long a message's stream lives in Redis. */
export interface ReplyStreamTtl {
  /** While the reply is being generated, in seconds (renewed by every event). */
  liveSeconds: number;
  /** Once the reply is stored, in seconds; later readers get the stored text in one piece. */
  retainSeconds: number;
}

/** Most appends sent in one script call. */
const MAX_APPENDS_PER_CALL = 512;

/**
 * Worker side: appends each message's generated text to a per-message Redis Stream, so that a client that opens the
 * stream late, or reconnects, replays it from the first token. The appends made in one turn of the event loop (a
 * decoding step's tokens for the whole batch, a batch's `done`s) go to Redis in one script call, not awaited;
 * {@link flush} waits for them, and the worker flushes before it stores replies, so a stored reply's tokens are
 * always in its stream first.
 */
export class ReplyStreamPublisher {
  private readonly redis: ScriptedRedis;
  private readonly pending = new Set<Promise<unknown>>();
  private queued: Array<{ key: string; event: string; ttl: number }> = [];
  private scheduled = false;
  private failures = 0;
  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttl: ReplyStreamTtl,
    private readonly log: Logger,
  ) {
    this.redis = RedisScripts.on(redis);
  }

  /** Appends a piece of generated text. Stored replies drop control characters; so does the stream, piece by piece. */
  token(messageId: string, attempt: string, text: string): void {
    const clean = storableText(text);
    if (clean) this.append(messageId, { type: 'token', text: clean, attempt }, this.ttl.liveSeconds);
  }

  /** Marks a message's reply as stored; the stream then lives `retainSeconds` more. */
  done(messageId: string): void {
    this.append(messageId, { type: 'done' }, this.ttl.retainSeconds);
  }

  /** Resolves once every append made so far has reached Redis (or failed, which is logged). */
  async flush(): Promise<void> {
    this.send();
    await Promise.all(this.pending);
  }

  private append(messageId: string, event: StreamEvent, ttlSeconds: number): void {
    this.queued.push({ key: this.keys.replyStream(messageId), event: JSON.stringify(event), ttl: ttlSeconds });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.send());
    }
  }

  /** Sends what is queued, in order, in as few script calls as the size limit allows. */
  private send(): void {
    this.scheduled = false;
    const queued = this.queued;
    this.queued = [];
    for (let start = 0; start < queued.length; start += MAX_APPENDS_PER_CALL) {
      const part = queued.slice(start, start + MAX_APPENDS_PER_CALL);
      const p = this.redis
        .avaStreamAppend(part.length, ...part.map((a) => a.key), ...part.flatMap((a) => [a.event, a.ttl]))
        .catch((err: unknown) => {
          // A lost append costs liveliness only: readers compare what they streamed with the stored reply and send
          // the difference. Logged once per burst so that an outage does not flood the log.
          if (this.failures++ % 1000 === 0)
            this.log.warn({ err, failures: this.failures }, 'appending to a reply stream failed');
        })
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }
}
