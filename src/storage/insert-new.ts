import { MongoBulkWriteError, type Collection, type Document, type OptionalUnlessRequiredId } from 'mongodb';
import { StorageError } from '../errors/errors.js';

/** MongoDB's duplicate key error code. */
const DUPLICATE_KEY = 11000;

/**
 * Inserts documents keyed by `_id` in one unordered write, where a duplicate key means "stored already": the
 * document there is left as it is, which is what makes every write of AVA's idempotent, on every MongoDB-wire server
 * and without transactions. Returns the ids newly inserted. Any other failure, or a server that acknowledged fewer
 * inserts than it reports (a write cut short), is a {@link StorageError} naming `what`, so the batch is retried
 * rather than taken as stored.
 */
export async function insertNew<T extends Document & { _id: string }>(
  collection: Collection<T>,
  docs: readonly T[],
  what: string,
): Promise<Set<string>> {
  if (docs.length === 0) return new Set();
  const ids = new Set(docs.map((d) => d._id));
  let inserted: number;
  try {
    inserted = (await collection.insertMany(docs as unknown as Array<OptionalUnlessRequiredId<T>>, { ordered: false }))
      .insertedCount;
  } catch (cause) {
    const errors = cause instanceof MongoBulkWriteError && cause.writeErrors ? [cause.writeErrors].flat() : [];
    if (errors.length === 0 || !errors.every((e) => e.code === DUPLICATE_KEY)) {
      throw new StorageError(`${what} failed: ${(cause as Error).message}`, { cause });
    }
    for (const e of errors) ids.delete(docs[e.index]._id);
    inserted = (cause as MongoBulkWriteError).result.insertedCount;
  }
  if (inserted !== ids.size)
    throw new StorageError(`${what} failed: the database acknowledged ${inserted} of ${ids.size} new documents`);
  return ids;
}
