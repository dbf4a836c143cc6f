import { Job, Queue } from 'bullmq';
import { MESSAGE_JOB_NAME } from '../contract/message-contract.js';
import type { Redis } from 'ioredis';
import { ConversationOwnerError, IdempotencyConflictError, QuotaError } from '../errors/errors.js';
import { idOfKey, tenantOfKey } from '../contract/scoped-key.js';
import { RedisScripts } from '../redis/redis-scripts.js';
import { messageJobId, type RedisKeys } from './redis-keys.js';

/** A pending message whose job the queue does not know is taken as lost (its enqueue failed) after this long. */
const LOST_AFTER_MS = 30_000;

/** How long registrations are remembered, in ms; the producer derives each from what it depends on. */
export interface RegistrationTtls {
  /** A conversation's and a tenant's pending messages: longer than any job is kept. */
  pendingMs: number;
  /** A conversation's owner after its last message: as long as the conversation is kept; 0 for ever. */
  ownerMs: number;
  /** A message's digest. */
  digestMs: number;
}

/** A message of a batch as the order sees it. */
export interface OrderEntry {
  messageId: string;
  conversationId: string;
}

/** A message as it is enqueued: under its scoped keys (which name its tenant), with its user and its content's digest. */
export interface Registration extends OrderEntry {
  userId: string;
  digest: string;
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
   * Registers messages as they are enqueued, all or none, in one round trip (`register-messages.lua`): each takes its
   * place in its conversation in array order, the first userId of a new conversation becomes its owner, its digest is
   * remembered, and it joins its tenant's unanswered messages. Returns each message's rank among those (the priority
   * that makes fair share), or 0 for one accepted before and answered since. Throws, registering nothing,
   * {@link IdempotencyConflictError} for a messageId used with other content, {@link ConversationOwnerError} for
   * another user's conversation, and {@link QuotaError} past `maxQueuedPerTenant`.
   */
  static async register(
    redis: Redis,
    keys: RedisKeys,
    entries: readonly Registration[],
    {
      maxQueuedPerTenant,
      ttls,
      pathOf,
    }: { maxQueuedPerTenant: number; ttls: RegistrationTtls; pathOf: (index: number) => string },
  ): Promise<number[]> {
    if (entries.length === 0) return [];
    const keyArgs = entries.flatMap((e) => {
      const c = keys.conversation(e.conversationId);
      return [c.owner, c.pending, keys.messageDigest(e.messageId), keys.tenantPending(tenantOfKey(e.messageId))];
    });
    keyArgs.push(keys.tenantsPending);
    const [outcome, ...rest] = await RedisScripts.on(redis).avaRegisterMessages(
      keyArgs.length,
      ...keyArgs,
      ttls.pendingMs,
      ttls.ownerMs,
      ttls.digestMs,
      maxQueuedPerTenant,
      ...entries.flatMap((e) => [e.messageId, e.userId, e.digest]),
    );
    if (outcome === 'ok') return rest.map(Number);
    if (outcome === 'queued')
      throw new QuotaError(
        'AVA_TENANT_MAX_QUEUED',
        'backlog',
        `the tenant has ${rest[0]} unanswered messages queued; ${rest[1]} more would pass its bound of ${maxQueuedPerTenant}`,
      );
    const refused = [];
    for (let i = 0; i < rest.length; i += 2) refused.push({ index: Number(rest[i]) - 1, why: String(rest[i + 1]) });
    const conflicts = refused.filter((r) => r.why === 'conflict');
    if (conflicts.length > 0)
      throw new IdempotencyConflictError(
        conflicts.map(({ index }) => ({
          path: `${pathOf(index)}messageId`,
          message: `messageId ${idOfKey(entries[index].messageId)} was used for a message with other content`,
        })),
      );
    throw new ConversationOwnerError(
      refused.map(({ index }) => ({
        path: `${pathOf(index)}conversationId`,
        message: `the conversation belongs to another user`,
      })),
    );
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
   * Removes answered messages from their conversations' sets and their tenants' unanswered ones, and wakes the next message of each, if it is parked:
   * two round trips, and one promotion per woken message.
   */
  async release(entries: readonly OrderEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const e of entries) {
      pipeline.zrem(this.keys.conversation(e.conversationId).pending, e.messageId);
      pipeline.zrem(this.keys.tenantPending(tenantOfKey(e.messageId)), e.messageId);
    }
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
