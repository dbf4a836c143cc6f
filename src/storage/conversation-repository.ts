import type { ConversationDocument, ConversationTurn } from '../contract/reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';

/** Bounds of a stored conversation. */
export interface HistoryLimits {
  /** Most turns kept. */
  maxTurns: number;
  /** Most characters (user + assistant text) kept. */
  maxChars: number;
}

const MAX_CAS_ATTEMPTS = 8;

/**
 * Reads and appends conversation turns. Appends are compare-and-swap on a version counter (no transactions, no
 * array-update operators), which MongoDB and FerretDB both support; a turn whose messageId is already present is
 * not added again, so a retried batch never duplicates history.
 */
export class ConversationRepository {
  constructor(
    private readonly database: Database,
    private readonly limits: HistoryLimits,
  ) {}

  /** Recent turns of each conversation, oldest first. */
  async recentTurns(conversationIds: readonly string[]): Promise<Map<string, ConversationTurn[]>> {
    const out = new Map<string, ConversationTurn[]>();
    if (conversationIds.length === 0) return out;
    try {
      const docs = await this.database.conversations.find({ _id: { $in: [...new Set(conversationIds)] } }).toArray();
      for (const d of docs) out.set(d._id, d.turns);
      return out;
    } catch (cause) {
      throw new StorageError(`reading conversations failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** One conversation, or null. */
  async get(conversationId: string): Promise<ConversationDocument | null> {
    return this.database.conversations.findOne({ _id: conversationId });
  }

  /** Appends `turns` (in order) to a conversation, creating it when new. */
  async append(conversationId: string, userId: string, turns: readonly ConversationTurn[]): Promise<void> {
    const col = this.database.conversations;
    try {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const current = await col.findOne({ _id: conversationId });
        const now = new Date();
        if (!current) {
          try {
            await col.insertOne({ _id: conversationId, userId, turns: this.bound([...turns]), version: 1, updatedAt: now });
            return;
          } catch (err) {
            if ((err as { code?: number }).code === 11000) continue; // another worker created it first
            throw err;
          }
        }
        const known = new Set(current.turns.map((t) => t.messageId));
        const merged = this.bound([...current.turns, ...turns.filter((t) => !known.has(t.messageId))]);
        const res = await col.updateOne({ _id: conversationId, version: current.version }, { $set: { turns: merged, updatedAt: now, version: current.version + 1 } });
        if (res.matchedCount === 1) return;
      }
    } catch (cause) {
      throw new StorageError(`appending to conversation ${conversationId} failed: ${(cause as Error).message}`, { cause });
    }
    throw new StorageError(`appending to conversation ${conversationId} lost ${MAX_CAS_ATTEMPTS} races in a row`);
  }

  /** Drops the oldest turns until both bounds hold. */
  private bound(turns: ConversationTurn[]): ConversationTurn[] {
    let chars = turns.reduce((n, t) => n + t.user.length + t.assistant.length, 0);
    let start = Math.max(0, turns.length - this.limits.maxTurns);
    for (let i = 0; i < start; i++) chars -= turns[i].user.length + turns[i].assistant.length;
    while (start < turns.length && chars > this.limits.maxChars) {
      chars -= turns[start].user.length + turns[start].assistant.length;
      start++;
    }
    return turns.slice(start);
  }
}
