import type { ConversationTurn, ConversationView, TurnDocument } from '../contract/reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';
import { onlyDuplicateKeys } from './duplicate-keys.js';

/** Bounds of a conversation's history. */
export interface HistoryLimits {
  /** Most turns kept. */
  maxTurns: number;
  /** Most characters (user + assistant text) returned as history. */
  maxChars: number;
}

/**
 * Conversations and their turns. A turn is its own document keyed by messageId, so appending is an idempotent
 * insert (a retried batch never duplicates history) and concurrent workers never lose each other's turns, without
 * transactions or compare-and-swap, which not every MongoDB-wire server makes atomic. Turns older than the newest
 * `maxTurns` are pruned as new ones arrive.
 */
export class ConversationRepository {
  constructor(
    private readonly database: Database,
    private readonly limits: HistoryLimits,
  ) {}

  /** Recent turns of each conversation, oldest first, within both bounds; one query for all of them. */
  async recentTurns(conversationIds: readonly string[]): Promise<Map<string, ConversationTurn[]>> {
    const ids = [...new Set(conversationIds)];
    if (ids.length === 0 || this.limits.maxTurns === 0) return new Map();
    try {
      // Pruning keeps at most maxTurns turns per conversation, so this reads at most ids × maxTurns documents.
      const docs = await this.database.turns.find({ conversationId: { $in: ids } }).sort({ at: -1, _id: -1 }).toArray();
      const out = new Map<string, ConversationTurn[]>();
      for (const [id, newestFirst] of groupBy(docs)) out.set(id, this.bounded(newestFirst));
      return out;
    } catch (cause) {
      throw new StorageError(`reading conversation turns failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** One conversation with its recent turns, or null. */
  async get(conversationId: string): Promise<ConversationView | null> {
    const doc = await this.database.conversations.findOne({ _id: conversationId });
    return doc ? { ...doc, turns: (await this.recentTurns([conversationId])).get(conversationId) ?? [] } : null;
  }

  /** Appends `turns` to a conversation, creating it when new. Turns already present are left as they are. */
  async append(conversationId: string, userId: string, turns: readonly ConversationTurn[]): Promise<void> {
    await this.appendMany([{ conversationId, userId, turns }]);
  }

  /**
   * Appends turns to several conversations in a few round trips whatever their number: one bulk upsert of the
   * conversations, one insert of all turns, one read and one delete to prune.
   */
  async appendMany(entries: ReadonlyArray<{ conversationId: string; userId: string; turns: readonly ConversationTurn[] }>): Promise<void> {
    const live = entries.filter((e) => e.turns.length > 0);
    if (live.length === 0) return;
    const now = new Date();
    try {
      await this.upsertConversations(live, now);
      const docs: TurnDocument[] = live.flatMap((e) => e.turns.map(({ messageId, ...t }) => ({ _id: messageId, conversationId: e.conversationId, ...t })));
      await this.database.turns.insertMany(docs, { ordered: false }).catch((err: unknown) => {
        if (!onlyDuplicateKeys(err)) throw err;
      });
      await this.prune(live.map((e) => e.conversationId));
    } catch (cause) {
      throw new StorageError(`appending conversation turns failed: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Creates the conversations that do not exist yet (inserts; a duplicate key means another worker created it) and
   * touches `updatedAt` on all of them with one update. Inserts and one multi-document update instead of per-document
   * upserts, which FerretDB runs far slower.
   */
  private async upsertConversations(entries: ReadonlyArray<{ conversationId: string; userId: string }>, now: Date): Promise<void> {
    const ids = [...new Set(entries.map((e) => e.conversationId))];
    const known = new Set((await this.database.conversations.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray()).map((d) => d._id));
    const fresh = new Map(entries.filter((e) => !known.has(e.conversationId)).map((e) => [e.conversationId, e.userId]));
    if (fresh.size > 0) {
      await this.database.conversations
        .insertMany([...fresh].map(([_id, userId]) => ({ _id, userId, createdAt: now, updatedAt: now })), { ordered: false })
        .catch((err: unknown) => {
          if (!onlyDuplicateKeys(err)) throw err;
        });
    }
    if (known.size > 0) await this.database.conversations.updateMany({ _id: { $in: [...known] } }, { $set: { updatedAt: now } });
  }

  /** The newest turns within both bounds, oldest first. */
  private bounded(newestFirst: readonly TurnDocument[]): ConversationTurn[] {
    const out: ConversationTurn[] = [];
    let chars = 0;
    for (const { _id, conversationId: _c, ...t } of newestFirst.slice(0, this.limits.maxTurns)) {
      chars += t.user.length + t.assistant.length;
      if (chars > this.limits.maxChars) break;
      out.push({ messageId: _id, ...t });
    }
    return out.reverse();
  }

  /** Deletes the turns of these conversations older than each one's newest `maxTurns`. */
  private async prune(conversationIds: readonly string[]): Promise<void> {
    const docs = await this.database.turns.find({ conversationId: { $in: [...new Set(conversationIds)] } }, { projection: { _id: 1, conversationId: 1, at: 1 } }).sort({ at: -1, _id: -1 }).toArray();
    const stale = [...groupBy(docs).values()].flatMap((newestFirst) => newestFirst.slice(this.limits.maxTurns).map((d) => d._id));
    if (stale.length > 0) await this.database.turns.deleteMany({ _id: { $in: stale } });
  }
}

/** Documents grouped by conversation, keeping their order. */
function groupBy<T extends { conversationId: string }>(docs: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const d of docs) {
    const list = out.get(d.conversationId);
    if (list) list.push(d);
    else out.set(d.conversationId, [d]);
  }
  return out;
}
