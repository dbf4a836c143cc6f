import { randomUUID } from 'node:crypto';
import type { KnowledgeEntry, KnowledgeEntryInput } from './knowledge-entry.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';

/** What an import changed. */
export interface ImportSummary {
  inserted: number;
  updated: number;
  unchanged: number;
  removed: number;
}

const META_ID = 'knowledge';

/**
 * The knowledge base in collection `knowledge`, plus a revision in collection `meta` that changes whenever an entry
 * does: workers poll that one small document to learn that they must rebuild their index.
 */
export class KnowledgeRepository {
  constructor(private readonly database: Database) {}

  /**
   * Stores entries by their stable id: new ones inserted, changed ones replaced, identical ones left alone (so a
   * re-import changes nothing, not even the revision). With `prune`, entries of the same source files that are no
   * longer in them are removed.
   */
  async importEntries(entries: readonly KnowledgeEntryInput[], opts: { prune?: boolean } = {}): Promise<ImportSummary> {
    const collection = this.database.knowledge;
    try {
      const existing = new Map(
        (await collection.find({ _id: { $in: entries.map((e) => e._id) } }).toArray()).map((d) => [d._id, d]),
      );
      const now = new Date();
      const changed = entries.filter((e) => !sameEntry(existing.get(e._id), e));
      if (changed.length > 0) {
        await collection.bulkWrite(
          changed.map((e) => ({
            replaceOne: { filter: { _id: e._id }, replacement: { ...e, updatedAt: now }, upsert: true },
          })),
          { ordered: false },
        );
      }
      let removed = 0;
      if (opts.prune) {
        const sources = [...new Set(entries.map((e) => e.source))];
        const keep = new Set(entries.map((e) => e._id));
        const stale = (await collection.find({ source: { $in: sources } }, { projection: { _id: 1 } }).toArray())
          .map((d) => d._id)
          .filter((id) => !keep.has(id));
        if (stale.length > 0) removed = (await collection.deleteMany({ _id: { $in: stale } })).deletedCount;
      }
      if (changed.length > 0 || removed > 0) await this.bumpRevision(now);
      const inserted = changed.filter((e) => !existing.has(e._id)).length;
      return { inserted, updated: changed.length - inserted, unchanged: entries.length - changed.length, removed };
    } catch (cause) {
      throw new StorageError(`importing knowledge failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** Every entry. */
  async all(): Promise<KnowledgeEntry[]> {
    return this.database.knowledge.find({}).toArray();
  }

  /** The current revision; null while the knowledge base has never been written. */
  async revision(): Promise<string | null> {
    const doc = await this.database.meta.findOne({ _id: META_ID });
    return doc?.revision ?? null;
  }

  // A random token rather than a counter: two concurrent imports each leave a value no worker has seen, without
  // relying on atomic increments.
  private async bumpRevision(now: Date): Promise<void> {
    await this.database.meta.replaceOne({ _id: META_ID }, { revision: randomUUID(), updatedAt: now }, { upsert: true });
  }
}

function sameEntry(stored: KnowledgeEntry | undefined, e: KnowledgeEntryInput): boolean {
  return (
    !!stored &&
    stored.title === e.title &&
    stored.body === e.body &&
    stored.language === e.language &&
    stored.source === e.source &&
    JSON.stringify(stored.tags ?? []) === JSON.stringify(e.tags)
  );
}
