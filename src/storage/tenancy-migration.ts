import { DEFAULT_TENANT } from '../contract/scoped-key.js';
import type { Database } from './database.js';

/** The `meta` document that records the migration as done. */
const DONE_ID = 'migration:tenancy-v1';

/**
 * Gives what was stored before tenancy to the default tenant: every reply, processing record, turn and conversation
 * without a `tenant` gets `default`. Their keys need no change, since the default tenant's scoped key is the id itself.
 * One-time and idempotent: it runs until the `meta` record says it is done, each step touches only documents that
 * still lack the field, and processes that run it together write the same value.
 */
export class TenancyMigration {
  constructor(private readonly database: Database) {}

  /** Migrates, unless done before; returns how many documents it gave to the default tenant. */
  async run(): Promise<number> {
    const { meta, replies, messages, turns, conversations } = this.database;
    if (await meta.findOne({ _id: DONE_ID }, { projection: { _id: 1 } })) return 0;
    const missing = { tenant: { $exists: false } };
    const set = { $set: { tenant: DEFAULT_TENANT } };
    let migrated = 0;
    for (const collection of [replies, messages, turns, conversations] as const)
      migrated += (await collection.updateMany(missing as never, set as never)).modifiedCount;
    await meta.updateOne(
      { _id: DONE_ID },
      { $set: { revision: String(migrated), updatedAt: new Date() } },
      { upsert: true },
    );
    return migrated;
  }
}
