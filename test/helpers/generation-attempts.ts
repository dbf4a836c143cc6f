import type { Redis } from 'ioredis';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import type { StreamEvent } from '../../src/queue/reply-stream.js';

/** What a message's reply stream says of its generations: the text each attempt streamed, by attempt id. */
export type Attempts = Map<string, string>;

/**
 * Each message's generation attempts, read from its reply stream in Redis (a worker streams every generated token
 * under its attempt's id, so a message generated twice has two attempts there, whoever stored its reply). A message
 * answered without the model has none.
 */
export async function generationAttempts(
  redis: Redis,
  prefix: string,
  queueName: string,
  messageIds: readonly string[],
): Promise<Map<string, Attempts>> {
  const keys = new RedisKeys(prefix, queueName);
  const out = new Map<string, Attempts>();
  for (const id of messageIds) {
    const attempts: Attempts = new Map();
    for (const [, fields] of await redis.xrange(keys.replyStream(id), '-', '+')) {
      // Each entry has one field, `e`, holding the event as JSON.
      const event = JSON.parse(fields[1]) as StreamEvent;
      if (event.type === 'token') attempts.set(event.attempt, (attempts.get(event.attempt) ?? '') + event.text);
    }
    out.set(id, attempts);
  }
  return out;
}
