import type { ConversationTurn, ConversationView, TurnDocument } from '../contract/reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';

/** Bounds of a conversation's history. */
export interface HistoryLimits {
  /** Most turns kept. */
  maxTurns: number;
  /** Most characters (user + assistant text) returned as history. */
  maxChars: number;
}

const DUPLICATE_KEY = 11000;

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

  /** Recent turns of each conversation, oldest first, within both bounds. */
  async recentTurns(conversationIds: readonly string[]): Promise<Map<string, ConversationTurn[]>> {
    const ids = [...new Set(conversationIds)];
    try {
      const lists = await Promise.all(ids.map((id) => this.recent(id)));
      return new Map(ids.map((id, i) => [id, lists[i]] as const).filter(([, turns]) => turns.length > 0));
    } catch (cause) {
      throw new StorageError(`reading conversation turns failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** One conversation with its recent turns, or null. */
  async get(conversationId: string): Promise<ConversationView | null> {
    const doc = await this.database.conversations.findOne({ _id: conversationId });
    return doc ? { ...doc, turns: await this.recent(conversationId) } : null;
  }

  /** Appends `turns` to a conversation, creating it when new. Turns already present are left as they are. */
  async append(conversationId: string, userId: string, turns: readonly ConversationTurn[]): Promise<void> {
    if (turns.length === 0) return;
    const now = new Date();
    try {
      await this.upsertConversation(conversationId, userId, now);
      const docs: TurnDocument[] = turns.map(({ messageId, ...t }) => ({ _id: messageId, conversationId, ...t }));
      await this.database.turns.insertMany(docs, { ordered: false }).catch((err: { code?: number; writeErrors?: Array<{ code: number }> }) => {
        const errors = err.writeErrors ?? [{ code: err.code ?? 0 }];
        if (!errors.every((e) => e.code === DUPLICATE_KEY)) throw err;
      });
      await this.prune(conversationId);
    } catch (cause) {
      throw new StorageError(`appending to conversation ${conversationId} failed: ${(cause as Error).message}`, { cause });
    }
  }

  private async upsertConversation(conversationId: string, userId: string, now: Date): Promise<void> {
    const update = { $set: { updatedAt: now }, $setOnInsert: { userId, createdAt: now } };
    try {
      await this.database.conversations.updateOne({ _id: conversationId }, update, { upsert: true });
    } catch (err) {
      // Two workers upserting a new conversation at once: one insert wins, the other's becomes an update.
      if ((err as { code?: number }).code !== DUPLICATE_KEY) throw err;
      await this.database.conversations.updateOne({ _id: conversationId }, update, { upsert: true });
    }
  }

  private async recent(conversationId: string): Promise<ConversationTurn[]> {
    if (this.limits.maxTurns === 0) return [];
    const docs = await this.database.turns.find({ conversationId }).sort({ at: -1, _id: -1 }).limit(this.limits.maxTurns).toArray();
    const out: ConversationTurn[] = [];
    let chars = 0;
    for (const { _id, conversationId: _c, ...t } of docs) {
      chars += t.user.length + t.assistant.length;
      if (chars > this.limits.maxChars) break;
      out.push({ messageId: _id, ...t });
    }
    return out.reverse();
  }

  /** Deletes turns older than the newest `maxTurns` of the conversation. */
  private async prune(conversationId: string): Promise<void> {
    const cutoff = await this.database.turns.find({ conversationId }).sort({ at: -1, _id: -1 }).skip(this.limits.maxTurns).limit(1).toArray();
    if (cutoff.length === 0) return;
    await this.database.turns.deleteMany({ conversationId, at: { $lte: cutoff[0].at }, _id: { $ne: cutoff[0]._id } });
    await this.database.turns.deleteOne({ _id: cutoff[0]._id });
  }
}
