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
 * `maxTurns` are pruned when a worker reads the conversation's history (see {@link recentTurns}).
 */
export class ConversationRepository {
  constructor(
    private readonly database: Database,
    private readonly limits: HistoryLimits,
  ) {}

  /**
   * Recent turns of each conversation, oldest first, within both bounds; one query for all of them. With `prune`
   * (the worker's read before it answers), a conversation found holding `2 × maxTurns` turns or more loses all but its
   * newest `maxTurns`, so keeping history bounded costs no read of its own and a delete only every `maxTurns` turns.
   */
  async recentTurns(conversationIds: readonly string[], opts: { prune?: boolean } = {}): Promise<Map<string, ConversationTurn[]>> {
    const ids = [...new Set(conversationIds)];
    if (ids.length === 0 || this.limits.maxTurns === 0) return new Map();
    try {
      // Pruning keeps fewer than 2 × maxTurns turns per conversation, so this reads few documents per conversation.
      const docs = await this.database.turns.find({ conversationId: { $in: ids } }).sort({ at: -1, _id: -1 }).toArray();
      const out = new Map<string, ConversationTurn[]>();
      const stale: string[] = [];
      for (const [id, newestFirst] of groupBy(docs)) {
        out.set(id, this.bounded(newestFirst));
        // A conversation is pruned once it holds twice its bound, in one go: deletes are scans on some servers
        // (FerretDB), so pruning one turn per message would cost one per batch.
        if (newestFirst.length >= 2 * this.limits.maxTurns) stale.push(...newestFirst.slice(this.limits.maxTurns).map((d) => d._id));
      }
      if (opts.prune && stale.length > 0) await this.database.turns.deleteMany({ _id: { $in: stale } });
      return out;
    } catch (cause) {
      throw new StorageError(`reading conversation turns failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** One conversation with its recent turns, or null. */
  async get(conversationId: string): Promise<ConversationView | null> {
    const doc = await this.database.conversations.findOne({ _id: conversationId });
    if (!doc) return null;
    const turns = (await this.recentTurns([conversationId])).get(conversationId) ?? [];
    // `updatedAt` is not rewritten on every turn (that would be one more write per batch); it is the newest turn's time.
    const newest = turns.length > 0 ? turns[turns.length - 1].at : doc.updatedAt;
    return { ...doc, updatedAt: newest > doc.updatedAt ? newest : doc.updatedAt, turns };
  }

  /** Appends `turns` to a conversation, creating it when new. Turns already present are left as they are. */
  async append(conversationId: string, userId: string, turns: readonly ConversationTurn[]): Promise<void> {
    await this.appendMany([{ conversationId, userId, turns }]);
  }

  /**
   * Appends turns to several conversations in two writes whatever their number, and no read: an insert of the
   * conversations (a duplicate key means it exists) and an insert of the turns (a duplicate key means that turn was
   * written by an earlier attempt). Pruning happens at the next {@link recentTurns} with `prune`.
   */
  async appendMany(entries: ReadonlyArray<{ conversationId: string; userId: string; turns: readonly ConversationTurn[] }>): Promise<void> {
    const live = entries.filter((e) => e.turns.length > 0);
    if (live.length === 0) return;
    // With history off nothing would ever read, or prune, the turns: only the conversations are recorded.
    const keepTurns = this.limits.maxTurns > 0;
    const now = new Date();
    try {
      const conversations = new Map(live.map((e) => [e.conversationId, e.userId]));
      await this.database.conversations
        .insertMany([...conversations].map(([_id, userId]) => ({ _id, userId, createdAt: now, updatedAt: now })), { ordered: false })
        .catch((err: unknown) => {
          if (!onlyDuplicateKeys(err)) throw err;
        });
      const docs: TurnDocument[] = live.flatMap((e) => e.turns.map(({ messageId, ...t }) => ({ _id: messageId, conversationId: e.conversationId, ...t })));
      if (keepTurns) {
        await this.database.turns.insertMany(docs, { ordered: false }).catch((err: unknown) => {
          if (!onlyDuplicateKeys(err)) throw err;
        });
      }
    } catch (cause) {
      throw new StorageError(`appending conversation turns failed: ${(cause as Error).message}`, { cause });
    }
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
