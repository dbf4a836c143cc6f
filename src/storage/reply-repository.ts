import type { ReplyDocument } from './reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';
import { insertNew } from './insert-new.js';
import { tenantOfKey } from '../contract/scoped-key.js';

/** Reads and writes `replies`. Every write is an insert keyed by messageId; a duplicate key means already stored. */
export class ReplyRepository {
  constructor(private readonly database: Database) {}

  /**
   * Stores a batch of replies in one unordered insert. A reply that already exists is left as it is (its insert
   * fails on the duplicate key, which is what makes storing idempotent), so storing twice never changes or duplicates
   * a reply. An insert rather than an upsert because it is atomic on every MongoDB-wire server and, on FerretDB,
   * several times faster. Returns the ids that were newly stored.
   */
  async storeAll(docs: readonly ReplyDocument[]): Promise<Set<string>> {
    return insertNew(this.database.replies, docs, `storing ${docs.length} replies`);
  }

  /** One reply by messageId (the `_id` index), or null. */
  async get(messageId: string): Promise<ReplyDocument | null> {
    return this.database.replies.findOne({ _id: messageId });
  }

  /** Whether a reply is stored, reading only its key. */
  async has(messageId: string): Promise<boolean> {
    return (await this.database.replies.findOne({ _id: messageId }, { projection: { _id: 1 } })) !== null;
  }

  /**
   * The digests of the stored replies among `keys` (null for one stored without a digest), by key: one `_id` lookup
   * each, sent together (an `$in` is a scan on some backends).
   */
  async digests(keys: readonly string[]): Promise<Map<string, string | null>> {
    const found = await Promise.all(
      keys.map((_id) => this.database.replies.findOne({ _id }, { projection: { _id: 1, digest: 1 } })),
    );
    return new Map(found.flatMap((d) => (d ? [[d._id, d.digest ?? null] as const] : [])));
  }

  /** The stored replies among `ids`, by id. */
  async getMany(ids: readonly string[]): Promise<Map<string, ReplyDocument>> {
    if (ids.length === 0) return new Map();
    try {
      // One id is read by equality on `_id`, which stays an index lookup on every backend (`$in` is a scan on FerretDB).
      const docs =
        ids.length === 1
          ? [await this.database.replies.findOne({ _id: ids[0] })].filter((d) => d !== null)
          : await this.database.replies.find({ _id: { $in: [...ids] } }).toArray();
      return new Map(docs.map((d) => [d._id, d]));
    } catch (cause) {
      throw new StorageError(`reading replies failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** A conversation's newest replies, newest first (index `tenant_1_conversationId_1_createdAt_1`). */
  async inConversation(conversationId: string, limit: number): Promise<ReplyDocument[]> {
    return this.database.replies
      .find({ tenant: tenantOfKey(conversationId), conversationId })
      .sort({ createdAt: -1, _id: -1 })
      .limit(limit)
      .toArray();
  }
}
