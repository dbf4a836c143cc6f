import { MongoBulkWriteError, type AnyBulkWriteOperation } from 'mongodb';
import type { ReplyDocument } from '../contract/reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';

const DUPLICATE_KEY = 11000;

/** Reads and writes `replies`. Every write is an idempotent upsert keyed by messageId. */
export class ReplyRepository {
  constructor(private readonly database: Database) {}

  /** Ids among `ids` that already have a stored reply (a re-delivered job). */
  async existingIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    try {
      const docs = await this.database.replies.find({ _id: { $in: [...ids] } }, { projection: { _id: 1 } }).toArray();
      return new Set(docs.map((d) => d._id));
    } catch (cause) {
      throw new StorageError(`reading replies failed: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Stores a batch of replies in one bulk write. A document that already exists is left as it is (`$setOnInsert`),
   * so storing twice never changes or duplicates a reply. Returns the ids that were newly stored.
   */
  async storeAll(docs: readonly ReplyDocument[]): Promise<Set<string>> {
    if (docs.length === 0) return new Set();
    const ops: AnyBulkWriteOperation<ReplyDocument>[] = docs.map(({ _id, ...rest }) => ({
      updateOne: { filter: { _id }, update: { $setOnInsert: rest }, upsert: true },
    }));
    try {
      const result = await this.database.replies.bulkWrite(ops, { ordered: false });
      // Values, not indexes: some MongoDB-wire servers number upserts within the upserted subset.
      return new Set(Object.values(result.upsertedIds).map(String));
    } catch (cause) {
      // Two workers upserting one messageId at once: the loser's duplicate-key error means "already stored".
      if (cause instanceof MongoBulkWriteError && cause.writeErrors && [cause.writeErrors].flat().every((e) => e.code === DUPLICATE_KEY)) {
        return new Set(Object.values(cause.result.upsertedIds).map(String));
      }
      throw new StorageError(`storing ${docs.length} replies failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** One reply by messageId, or null. */
  async get(messageId: string): Promise<ReplyDocument | null> {
    return this.database.replies.findOne({ _id: messageId });
  }
}
