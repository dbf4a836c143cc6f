import type { Redis } from 'ioredis';
import { storableText } from '../contract/reply-document.js';
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

/** The Redis key of a message's stream; its pub/sub channel has the same name and carries new entry ids. */
export function replyStreamKey(prefix: string, queueName: string, messageId: string): string {
  return `${prefix}:${queueName}:stream:${messageId}`;
}

// Append, renew the TTL and notify readers in one atomic step, so that a reader woken by the notification always
// finds the entry.
const APPEND_SCRIPT = `
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[1], id)
return id`;

type AppendingRedis = Redis & { avaStreamAppend(key: string, event: string, ttl: number): Promise<string> };

/**
 * Worker side: appends each message's generated text to a per-message Redis Stream, so that a client that opens the
 * stream late, or reconnects, replays it from the first token. Appends are pipelined and not awaited one by one;
 * {@link flush} waits for them, and the worker flushes before it stores replies, so a stored reply's tokens are
 * always in its stream first.
 */
export class ReplyStreamPublisher {
  private readonly redis: AppendingRedis;
  private readonly pending = new Set<Promise<unknown>>();
  private failures = 0;

  constructor(redis: Redis, private readonly prefix: string, private readonly queueName: string, private readonly ttl: ReplyStreamTtl, private readonly log: Logger) {
    if (!('avaStreamAppend' in redis)) redis.defineCommand('avaStreamAppend', { numberOfKeys: 1, lua: APPEND_SCRIPT });
    this.redis = redis as AppendingRedis;
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
    await Promise.all(this.pending);
  }

  private append(messageId: string, event: StreamEvent, ttlSeconds: number): void {
    const p = this.redis
      .avaStreamAppend(replyStreamKey(this.prefix, this.queueName, messageId), JSON.stringify(event), ttlSeconds)
      .catch((err: unknown) => {
        // A lost append costs liveliness only: readers compare what they streamed with the stored reply and send
        // the difference. Logged once per burst so that an outage does not flood the log.
        if (this.failures++ % 1000 === 0) this.log.warn({ err, failures: this.failures }, 'appending to a reply stream failed');
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }
}
