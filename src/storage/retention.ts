import type { Database } from './database.js';
import { UploadRepository } from './upload-repository.js';

/** How long each collection keeps a document, in seconds; 0 keeps it for ever. */
export interface RetentionPolicy {
  replies: number;
  turns: number;
  messages: number;
  conversations: number;
  /** Spoken replies (collection `audio`): a reply is spoken again when fetched after its speech expired. */
  audio: number;
  /** Voice messages' audio (GridFS bucket `uploads`): swept by age in every mode, since GridFS has no TTL. */
  uploads: number;
}

/** The date field each collection ages by. */
const AGE_FIELD: Record<Exclude<keyof RetentionPolicy, 'uploads'>, string> = {
  replies: 'createdAt',
  turns: 'at',
  messages: 'startedAt',
  conversations: 'createdAt',
  audio: 'createdAt',
};

/** How the database enforces retention. */
export type RetentionMode = 'ttl-index' | 'sweep';

/**
 * Every collection's retention. On MongoDB the server enforces it with TTL indexes on each collection's age field,
 * in the background. FerretDB has no TTL indexes, so there a worker sweeps instead ({@link sweep}, one
 * `deleteMany` by age per collection, run every `AVA_RETENTION_SWEEP_MS` by one worker at a time): each sweep reads
 * the whole collection on FerretDB's SQLite backend, but it runs off the hot path, and the hot path reads nothing
 * whose cost grows with the collections.
 */
export class Retention {
  private constructor(
    private readonly database: Database,
    private readonly policy: RetentionPolicy,
    readonly mode: RetentionMode,
  ) {}

  /** Detects the server (FerretDB names itself in `buildInfo`) and, on MongoDB, sets the TTL indexes to the policy. */
  static async apply(database: Database, policy: RetentionPolicy): Promise<Retention> {
    const info = await database.db.admin().command({ buildInfo: 1 });
    const retention = new Retention(database, policy, 'ferretdbVersion' in info ? 'sweep' : 'ttl-index');
    if (retention.mode === 'ttl-index') await retention.applyTtlIndexes();
    return retention;
  }

  /** Whether a worker must sweep: on servers without TTL indexes, and wherever uploads expire. */
  get needsSweeps(): boolean {
    return this.mode === 'sweep' || this.policy.uploads > 0;
  }

  /**
   * Deletes what is past its retention: expired uploads everywhere, and the collections' documents on servers
   * without TTL indexes. Returns the documents (uploads: files) deleted per collection.
   */
  async sweep(now = new Date()): Promise<Partial<Record<keyof RetentionPolicy, number>>> {
    const deleted: Partial<Record<keyof RetentionPolicy, number>> = {};
    // A GridFS file is a document and its chunks; only deleting through the bucket removes both.
    if (this.policy.uploads > 0)
      deleted.uploads = await new UploadRepository(this.database).deleteOlderThan(
        new Date(now.getTime() - this.policy.uploads * 1000),
      );
    if (this.mode !== 'sweep') return deleted;
    for (const name of Object.keys(AGE_FIELD) as Array<keyof typeof AGE_FIELD>) {
      const seconds = this.policy[name];
      if (seconds === 0) continue;
      const cutoff = new Date(now.getTime() - seconds * 1000);
      deleted[name] = (
        await this.database.db.collection(name).deleteMany({ [AGE_FIELD[name]]: { $lt: cutoff } })
      ).deletedCount;
    }
    return deleted;
  }

  /**
   * One single-field index on each age field, with `expireAfterSeconds` where the policy keeps documents for a while
   * and without it where it keeps them for ever. An existing index changes its TTL in place (`collMod`); one that
   * must stop expiring is rebuilt without the option.
   */
  private async applyTtlIndexes(): Promise<void> {
    for (const name of Object.keys(AGE_FIELD) as Array<keyof typeof AGE_FIELD>) {
      const collection = this.database.db.collection(name);
      const key = { [AGE_FIELD[name]]: 1 };
      const seconds = this.policy[name];
      const existing = (await collection.indexes()).find((i) => JSON.stringify(i.key) === JSON.stringify(key));
      if (!existing) {
        await collection.createIndex(key, seconds > 0 ? { expireAfterSeconds: seconds } : {});
      } else if (seconds > 0 && existing.expireAfterSeconds !== seconds) {
        await this.database.db.command({ collMod: name, index: { keyPattern: key, expireAfterSeconds: seconds } });
      } else if (seconds === 0 && existing.expireAfterSeconds !== undefined) {
        await collection.dropIndex(existing.name!);
        await collection.createIndex(key);
      }
    }
  }
}
