import type { ConversationTurn, ConversationView, TurnDocument } from './reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';
import { insertNew } from './insert-new.js';
import type { RecentTurnsCache } from './recent-turns-cache.js';
import { LRUCache } from 'lru-cache';
import { tenantOfKey } from '../contract/scoped-key.js';

/** Conversations this process recently saw stored, and for how long that is trusted. */
const KNOWN_CONVERSATIONS = { max: 100_000, ttl: 3_600_000 };

/** Bounds of a conversation's history. */
export interface HistoryLimits {
  /** Most turns kept. */
  maxTurns: number;
  /** Most characters (user + assistant text) returned as history. */
  maxChars: number;
}

/**
 * Conversations and their turns: every turn in the database (collection `turns`, the durable record) and each
 * conversation's newest turns in the Redis {@link RecentTurnsCache}, which is where prompts take their history from.
 * A turn is its own document keyed by messageId, so appending is an idempotent insert (a retried batch never
 * duplicates history) and concurrent workers never lose each other's turns, without transactions or compare-and-swap,
 * which not every MongoDB-wire server makes atomic.
 */
export class ConversationRepository {
  /**
   * Conversations whose document this process wrote or found recently: their insert is skipped. The hour's TTL
   * bounds how long a document deleted by retention stays missing while its conversation goes on.
   */
  private readonly known = new LRUCache<string, true>(KNOWN_CONVERSATIONS);

  constructor(
    private readonly database: Database,
    private readonly limits: HistoryLimits,
    /** The history cache; without it (API, CLI) prompts' history is not available here. */
    private readonly cache?: RecentTurnsCache,
  ) {}

  /**
   * The worker's read: each conversation's newest turns within both bounds, oldest first, from the cache alone (one
   * pipelined round trip to Redis for the batch, whatever the database holds). A conversation the cache lacks has
   * no history here.
   */
  async history(conversationIds: readonly string[]): Promise<Map<string, ConversationTurn[]>> {
    if (!this.cache || this.limits.maxTurns === 0) return new Map();
    const cached = await this.cache.recent(conversationIds);
    return new Map([...cached].map(([id, turns]) => [id, this.bounded([...turns].reverse())]));
  }

  /**
   * One conversation's newest turns from the database, oldest first, within both bounds: an equality query on its
   * tenant and scoped key (index `tenant_1_conversationId_1_at_-1_seq_-1`), limited to `maxTurns`.
   */
  async recentTurns(conversationId: string): Promise<ConversationTurn[]> {
    if (this.limits.maxTurns === 0) return [];
    try {
      const newestFirst = await this.database.turns
        .find({ tenant: tenantOfKey(conversationId), conversationId })
        .sort({ at: -1, seq: -1 })
        .limit(this.limits.maxTurns)
        .toArray();
      return this.bounded(
        newestFirst.map(({ _id, conversationId: _c, tenant: _t, ...t }) => ({ messageId: _id, ...t })),
      );
    } catch (cause) {
      throw new StorageError(`reading conversation turns failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** One conversation (by its scoped key) with its recent turns, or null. */
  async get(conversationId: string): Promise<ConversationView | null> {
    const doc = await this.database.conversations.findOne({ _id: conversationId });
    if (!doc) return null;
    const turns = await this.recentTurns(conversationId);
    // `updatedAt` is not rewritten on every turn (that would be one more write per batch); it is the newest turn's time.
    const newest = turns.length > 0 ? turns[turns.length - 1].at : doc.updatedAt;
    return { ...doc, updatedAt: newest > doc.updatedAt ? newest : doc.updatedAt, turns };
  }

  /**
   * Appends `turns` to a conversation (by its scoped key), creating it when new. Turns already present are left as
   * they are.
   */
  async append(conversationId: string, userId: string, turns: readonly ConversationTurn[]): Promise<void> {
    await this.appendMany([{ tenant: tenantOfKey(conversationId), conversationId, userId, turns }]);
  }

  /**
   * Appends turns to several conversations in at most two database writes whatever their number, and no read: an
   * insert of the conversations this process has not seen lately (a duplicate key means it exists) and an insert of
   * the turns (a duplicate key means that turn was written by an earlier attempt); then one round trip to the
   * history cache.
   */
  async appendMany(
    entries: ReadonlyArray<{
      tenant: string;
      conversationId: string;
      userId: string;
      turns: readonly ConversationTurn[];
    }>,
  ): Promise<void> {
    const live = entries.filter((e) => e.turns.length > 0);
    if (live.length === 0) return;
    // With history off no prompt reads the turns: only the conversations are recorded.
    const keepTurns = this.limits.maxTurns > 0;
    const now = new Date();
    const conversations = new Map(
      live.filter((e) => !this.known.has(e.conversationId)).map((e) => [e.conversationId, e]),
    );
    await insertNew(
      this.database.conversations,
      [...conversations].map(([_id, e]) => ({
        _id,
        tenant: e.tenant,
        userId: e.userId,
        createdAt: now,
        updatedAt: now,
      })),
      'recording conversations',
    );
    for (const id of conversations.keys()) this.known.set(id, true);
    const docs: TurnDocument[] = live.flatMap((e) =>
      e.turns.map(({ messageId, ...t }) => ({
        _id: messageId,
        tenant: e.tenant,
        conversationId: e.conversationId,
        ...t,
      })),
    );
    if (keepTurns) await insertNew(this.database.turns, docs, 'appending conversation turns');
    if (keepTurns) await this.cache?.append(live);
  }

  /** The newest turns within both bounds, oldest first. */
  private bounded(newestFirst: readonly ConversationTurn[]): ConversationTurn[] {
    const out: ConversationTurn[] = [];
    let chars = 0;
    for (const t of newestFirst.slice(0, this.limits.maxTurns)) {
      chars += t.user.length + t.assistant.length;
      if (chars > this.limits.maxChars) break;
      out.push(t);
    }
    return out.reverse();
  }
}
