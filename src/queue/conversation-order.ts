import { Job, Queue } from 'bullmq';
import { MESSAGE_JOB_NAME } from '../contract/message-contract.js';
import type { Redis } from 'ioredis';
import { ConversationOwnerError } from '../errors/errors.js';
import { messageJobId, type RedisKeys } from './redis-keys.js';

/** How long a conversation's pending set outlives its last registration: longer than any job is kept. */
const PENDING_TTL_MS = 8 * 24 * 3_600_000;
/** A pending message whose job the queue does not know is taken as lost (its enqueue failed) after this long. */
const LOST_AFTER_MS = 30_000;

/** How long a conversation's owner is remembered after its last message: its default retention (90 days). */
const OWNER_TTL_MS = 90 * 24 * 3_600_000;

// KEYS: for each message, its conversation's owner key and pending set; ARGV: the two TTLs, then each message's id
// and userId. First every conversation's owner is checked (the first userId to send to a conversation owns it); a
// message from anyone else makes the whole call return the 1-based indexes of the offenders and write nothing.
// Then each message gets the server's time in µs as its place, or one past its conversation's last place, so places
// only grow even when the clock does not; a message already in its set keeps its place (a repeated enqueue is a no-op).
const REGISTER_SCRIPT = `
local n = #KEYS / 2
local claimed, offenders = {}, {}
for i = 1, n do
  local user = ARGV[2 + 2 * i]
  local owner = claimed[KEYS[2 * i - 1]] or redis.call('GET', KEYS[2 * i - 1])
  if owner and owner ~= user then table.insert(offenders, i) else claimed[KEYS[2 * i - 1]] = user end
end
if #offenders > 0 then return offenders end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, n do
  local owner, pending, id = KEYS[2 * i - 1], KEYS[2 * i], ARGV[1 + 2 * i]
  redis.call('SET', owner, ARGV[2 + 2 * i], 'PX', ARGV[2])
  if not redis.call('ZSCORE', pending, id) then
    local place = now
    local last = redis.call('ZRANGE', pending, -1, -1, 'WITHSCORES')
    if last[2] and tonumber(last[2]) >= place then place = tonumber(last[2]) + 1 end
    redis.call('ZADD', pending, place, id)
  end
  redis.call('PEXPIRE', pending, ARGV[1])
end
return {}`;

/** A message of a batch as the order sees it. */
export interface OrderEntry {
  messageId: string;
  conversationId: string;
}

/** A message as it is enqueued: with the user who sends it. */
export interface Registration extends OrderEntry {
  userId: string;
}

/** A batch's messages split by {@link ConversationOrder.admit}. */
export interface Admission<T> {
  /** Those that may be answered now. */
  admitted: T[];
  /** Those that wait for an earlier message of their conversation. */
  waiting: T[];
  /** Each placed message's place in its conversation (µs, growing in the order they were accepted), by messageId. */
  places: Map<string, number>;
}

/**
 * Messages of one conversation are answered in the order they were accepted, each after the turns before it: the
 * producer gives every message a place in its conversation's pending set (a sorted set in Redis) as it enqueues it,
 * and a worker answers a message only when it is the first of its set, removing it once its reply and turn are
 * stored. A later message taken early (in the same batch, or by another worker) is parked in the delayed set and
 * woken when the one before it is released. Unrelated conversations never wait for each other. Jobs added without
 * the producer have no place and are not ordered.
 */
export class ConversationOrder {
  private readonly queue: Queue;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {
    this.queue = new Queue(keys.queueName, { connection: redis, prefix: keys.prefix });
  }

  /**
   * Gives each message its place in its conversation, in array order, and records the first userId of a new
   * conversation as its owner; one round trip. Throws {@link ConversationOwnerError}, registering nothing, when any
   * message's conversation belongs to another userId.
   */
  static async register(
    redis: Redis,
    keys: RedisKeys,
    entries: readonly Registration[],
    pathOf: (index: number) => string = (i) => `[${i}].`,
  ): Promise<void> {
    if (entries.length === 0) return;
    const keyArgs = entries.flatMap((e) => [
      keys.conversation(e.conversationId).owner,
      keys.conversation(e.conversationId).pending,
    ]);
    const offenders = (await redis.eval(
      REGISTER_SCRIPT,
      keyArgs.length,
      ...keyArgs,
      PENDING_TTL_MS,
      OWNER_TTL_MS,
      ...entries.flatMap((e) => [e.messageId, e.userId]),
    )) as number[];
    if (offenders.length > 0) {
      throw new ConversationOwnerError(
        offenders.map((i) => ({
          path: `${pathOf(i - 1)}conversationId`,
          message: `conversation ${entries[i - 1].conversationId} belongs to another user`,
        })),
      );
    }
  }

  /**
   * Splits a batch's messages into those that may be answered now (the first pending message of their conversation,
   * or one with no place, which is not ordered) and those that must wait for an earlier one, and reads their places.
   * A first message whose job is finished, or lost, is removed from its set so that the next one can go.
   */
  async admit<T extends OrderEntry>(entries: readonly T[]): Promise<Admission<T>> {
    if (entries.length === 0) return { admitted: [], waiting: [], places: new Map() };
    const pipeline = this.redis.pipeline();
    for (const e of entries) {
      const key = this.keys.conversation(e.conversationId).pending;
      pipeline.zrange(key, 0, 0, 'WITHSCORES');
      pipeline.zscore(key, e.messageId);
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    const admitted: T[] = [];
    const waiting: T[] = [];
    const places = new Map<string, number>();
    const blockers = new Map<string, { conversationId: string; placedAtMs: number }>();
    entries.forEach((e, i) => {
      const [head, headPlace] = results[2 * i][1] as string[];
      const place = results[2 * i + 1][1] as string | null;
      // A job added without the producer has no place and is not ordered: it never waits, and no one wakes it.
      if (place === null) {
        admitted.push(e);
        return;
      }
      places.set(e.messageId, Number(place));
      if (head === e.messageId) {
        admitted.push(e);
        return;
      }
      waiting.push(e);
      if (head !== undefined)
        blockers.set(head, { conversationId: e.conversationId, placedAtMs: Number(headPlace) / 1000 });
    });
    await this.dropFinished(blockers);
    return { admitted, waiting, places };
  }

  /**
   * Removes answered messages from their conversations' sets and wakes the next message of each, if it is parked:
   * two round trips, and one promotion per woken message.
   */
  async release(entries: readonly OrderEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const e of entries) pipeline.zrem(this.keys.conversation(e.conversationId).pending, e.messageId);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    await this.wake(entries);
  }

  /**
   * Moves the first pending message of each of these conversations from the delayed set to the queue, if it is
   * parked there. Both sides write first and look second — a release removes its message, then wakes the next; a
   * worker parks its messages, then wakes them if they have become first — so a message is woken by one or the
   * other, never by neither; being woken twice is a no-op.
   */
  async wake(entries: readonly OrderEntry[]): Promise<void> {
    const conversations = [...new Set(entries.map((e) => e.conversationId))];
    if (conversations.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const c of conversations) pipeline.zrange(this.keys.conversation(c).pending, 0, 0);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    const heads = results.flatMap(([, head]) => head as string[]);
    await Promise.all(heads.map((messageId) => this.promote(messageJobId(messageId))));
  }

  /** Closes the queue handle (not the shared connection). */
  async close(): Promise<void> {
    await this.queue.close();
  }

  /** Moves a parked job to the queue; a job that is not parked (taken, waiting, done) is left as it is. */
  private async promote(jobId: string): Promise<void> {
    try {
      await new Job(this.queue, MESSAGE_JOB_NAME, {}, {}, jobId).promote();
    } catch (err) {
      // BullMQ's promote answers -3 (JobNotInState) for a job outside the delayed set.
      if (!/is not in the delayed state/.test((err as Error).message)) throw err;
    }
  }

  /** First messages whose jobs are finished, or unknown to the queue for longer than an enqueue takes, leave their sets. */
  private async dropFinished(
    blockers: ReadonlyMap<string, { conversationId: string; placedAtMs: number }>,
  ): Promise<void> {
    // One state read per blocker, all sent at once (a batch of a bursty conversation set has hundreds).
    const states = await Promise.all(
      [...blockers.keys()].map((messageId) => this.queue.getJobState(messageJobId(messageId))),
    );
    const done = [...blockers].flatMap(([messageId, b], i) => {
      const state = states[i];
      return state === 'completed' ||
        state === 'failed' ||
        (state === 'unknown' && Date.now() - b.placedAtMs > LOST_AFTER_MS)
        ? [{ messageId, conversationId: b.conversationId }]
        : [];
    });
    await this.release(done);
  }
}
