import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';

/** One event of a message's live stream. */
export type StreamEvent = { type: 'token'; text: string } | { type: 'done' };

/** The Redis pub/sub channel of one message's stream. */
export function streamChannel(prefix: string, queueName: string, messageId: string): string {
  return `${prefix}:${queueName}:stream:${messageId}`;
}

/**
 * Worker side: publishes generated text as it arrives, then `done` once the reply is stored. Pub/sub is
 * fire-and-forget by design: a stream is a convenience, the stored reply is the record, so a lost event costs
 * nothing but liveliness.
 */
export class TokenPublisher {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly queueName: string) {}

  /** Publishes one event for `messageId`. Never throws; a failed publish only loses liveliness. */
  publish(messageId: string, event: StreamEvent): void {
    this.redis.publish(streamChannel(this.prefix, this.queueName, messageId), JSON.stringify(event)).catch(() => undefined);
  }
}

/**
 * API side: one pattern subscription per process, fanned out to the listeners of each message, so open streams cost
 * no Redis connection each.
 */
export class TokenSubscriber {
  private readonly events = new EventEmitter();
  private ready: Promise<unknown> | undefined;

  constructor(private readonly subscriber: Redis, private readonly prefix: string, private readonly queueName: string) {
    this.events.setMaxListeners(0);
    subscriber.on('pmessage', (_pattern: string, channel: string, payload: string) => {
      const messageId = channel.slice(streamChannel(prefix, queueName, '').length);
      try {
        this.events.emit(messageId, JSON.parse(payload) as StreamEvent);
      } catch {
        // not one of ours: ignore
      }
    });
  }

  /** Calls `listener` with each event of `messageId` until the returned function is called. */
  async listen(messageId: string, listener: (e: StreamEvent) => void): Promise<() => void> {
    this.ready ??= this.subscriber.psubscribe(`${streamChannel(this.prefix, this.queueName, '')}*`);
    await this.ready;
    this.events.on(messageId, listener);
    return () => this.events.off(messageId, listener);
  }
}
