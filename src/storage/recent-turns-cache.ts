import type { Redis } from 'ioredis';
import type { ConversationTurn } from './reply-document.js';
import { StorageError } from '../errors/errors.js';
import { RedisScripts, type ScriptedRedis } from '../redis/redis-scripts.js';

/** Settings of the cache. */
export interface RecentTurnsOptions {
  /**
   * The two keys of a conversation (its ordered set and its hash), one pair per queue and conversation, in one slot
   * of a Redis Cluster (the queue's `RedisKeys.history`).
   */
  keysOf: (conversationId: string) => { order: string; turns: string };
  /** Most turns kept per conversation. */
  maxTurns: number;
  /** A conversation silent this long is forgotten, in seconds. */
  ttlSeconds: number;
}

/**
 * Each conversation's newest turns in Redis, for prompts: bounded to `maxTurns`, idempotent by messageId, forgotten
 * after `ttlSeconds` of silence. Reading the history of a batch is one pipelined script call per conversation, so
 * its cost does not depend on how much the database holds. The database keeps every turn as the durable record; a
 * conversation this cache lacks (new, silent past the TTL, or lost with Redis's data) is answered without history,
 * never with a read of the database on the hot path.
 */
export class RecentTurnsCache {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly opts: RecentTurnsOptions,
  ) {
    this.redis = RedisScripts.on(redis);
  }

  /** Appends turns to their conversations in one round trip. */
  async append(entries: ReadonlyArray<{ conversationId: string; turns: readonly ConversationTurn[] }>): Promise<void> {
    const live = entries.filter((e) => e.turns.length > 0);
    if (live.length === 0 || this.opts.maxTurns === 0) return;
    const pipeline = this.redis.pipeline() as unknown as ScriptedRedis & {
      exec(): Promise<Array<[Error | null, unknown]> | null>;
    };
    for (const e of live) {
      // A place in µs stays exact as a Redis score (a double) until the year 2255.
      const args = e.turns.flatMap((t) => [
        t.seq ?? t.at.getTime() * 1000,
        t.messageId,
        JSON.stringify({
          m: t.messageId,
          u: t.user,
          a: t.assistant,
          i: t.intent,
          f: t.slots && Object.keys(t.slots).length > 0 ? t.slots : undefined,
          t: t.at.getTime(),
          s: t.seq,
        }),
      ]);
      void pipeline.avaTurnsAppend(...this.keys(e.conversationId), this.opts.maxTurns, this.opts.ttlSeconds, ...args);
    }
    await this.run(pipeline, 'appending turns to the history cache');
  }

  /** The newest turns of each conversation, oldest first; conversations the cache lacks are absent. */
  async recent(conversationIds: readonly string[]): Promise<Map<string, ConversationTurn[]>> {
    const ids = [...new Set(conversationIds)];
    if (ids.length === 0 || this.opts.maxTurns === 0) return new Map();
    const pipeline = this.redis.pipeline() as unknown as ScriptedRedis & {
      exec(): Promise<Array<[Error | null, unknown]> | null>;
    };
    for (const id of ids) void pipeline.avaTurnsRead(...this.keys(id), this.opts.maxTurns);
    const results = await this.run(pipeline, 'reading the history cache');
    const out = new Map<string, ConversationTurn[]>();
    ids.forEach((conversationId, i) => {
      const raw = results[i] as Array<string | null>;
      const turns: ConversationTurn[] = [];
      for (const json of raw) {
        if (json === null) continue;
        const t = JSON.parse(json) as {
          u: string;
          a: string;
          i?: string;
          f?: Record<string, string>;
          m: string;
          t: number;
          s?: number;
        };
        turns.push({
          messageId: t.m,
          user: t.u,
          assistant: t.a,
          ...(t.i ? { intent: t.i } : {}),
          ...(t.f ? { slots: t.f } : {}),
          at: new Date(t.t),
          ...(t.s !== undefined ? { seq: t.s } : {}),
        });
      }
      if (turns.length > 0) out.set(conversationId, turns);
    });
    return out;
  }

  private keys(conversationId: string): [string, string] {
    const { order, turns } = this.opts.keysOf(conversationId);
    return [order, turns];
  }

  private async run(
    pipeline: { exec(): Promise<Array<[Error | null, unknown]> | null> },
    what: string,
  ): Promise<unknown[]> {
    let replies: Array<[Error | null, unknown]> | null;
    try {
      replies = await pipeline.exec();
    } catch (cause) {
      throw new StorageError(`${what} failed: ${(cause as Error).message}`, { cause });
    }
    const failed = replies?.find(([err]) => err);
    if (!replies || failed) throw new StorageError(`${what} failed: ${failed?.[0]?.message ?? 'no reply from Redis'}`);
    return replies.map(([, value]) => value);
  }
}
