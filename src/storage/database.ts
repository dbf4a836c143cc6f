import { MongoClient, type Collection, type Db, type Document } from 'mongodb';
import { TenancyMigration } from './tenancy-migration.js';
import { ServiceUnavailableError } from '../errors/errors.js';
import { redactUrl } from '../logging/redact.js';
import type {
  ConversationDocument,
  MessageStateDocument,
  ReplyDocument,
  SpeechDocument,
  TurnDocument,
} from './reply-document.js';
import type { KnowledgeEntry } from './knowledge-entry.js';

/** A small document of collection `meta`: a named revision that changes whenever what it describes does. */
export interface MetaDocument {
  _id: string;
  revision: string;
  updatedAt: Date;
}

/**
 * Opens the database with the official driver and creates the indexes AVA relies on. Uses nothing beyond what
 * both MongoDB and FerretDB support, so switching is a change of URL.
 */
export class Database {
  private constructor(
    /** The driver client, for closing and pings. */
    readonly client: MongoClient,
    /** The AVA database. */
    readonly db: Db,
  ) {}

  /** Connects (failing fast with a hint when unreachable) and ensures indexes. */
  static async connect(url: string, dbName: string, timeoutMs = 5_000, socketTimeoutMs = 30_000): Promise<Database> {
    // Bounded timeouts keep a dead database from hanging a worker: operations fail and the jobs are retried. Without
    // a socket timeout, a connection cut in the middle of an operation could leave it waiting for ever, and the
    // worker would keep renewing the locks of a batch that never ends.
    const client = new MongoClient(url, {
      serverSelectionTimeoutMS: timeoutMs,
      connectTimeoutMS: timeoutMs,
      waitQueueTimeoutMS: timeoutMs,
      socketTimeoutMS: socketTimeoutMs,
      retryWrites: true,
    });
    try {
      await client.connect();
      await client.db(dbName).command({ ping: 1 });
    } catch (cause) {
      await client.close().catch(() => undefined);
      throw new ServiceUnavailableError(`database at ${redactUrl(url)} is unreachable: ${(cause as Error).message}`, {
        hint: 'start it with `npm run services -- up` or set AVA_MONGO_URL',
        cause,
      });
    }
    const database = new Database(client, client.db(dbName));
    await database.ensureIndexes();
    return database;
  }

  /** Collection `audio`: synthesised speech of replies, by `<messageId>:<voice>`. */
  get audio() {
    return this.db.collection<SpeechDocument>('audio');
  }

  /** Collection `replies`. */
  get replies() {
    return this.db.collection<ReplyDocument>('replies');
  }

  /** Collection `conversations`. */
  get conversations() {
    return this.db.collection<ConversationDocument>('conversations');
  }

  /** Collection `turns`. */
  get turns() {
    return this.db.collection<TurnDocument>('turns');
  }

  /** Collection `messages`: the in-progress state of messages a worker has taken. */
  get messages() {
    return this.db.collection<MessageStateDocument>('messages');
  }

  /** Collection `knowledge`. */
  get knowledge() {
    return this.db.collection<KnowledgeEntry>('knowledge');
  }

  /** Collection `meta`: revisions. */
  get meta() {
    return this.db.collection<MetaDocument>('meta');
  }

  private async ensureIndexes(): Promise<void> {
    await new TenancyMigration(this).run();
    // Every read of a tenant's data is an equality on `tenant` first.
    await this.turns.createIndex({ tenant: 1, conversationId: 1, at: -1, seq: -1 });
    await this.replies.createIndex({ tenant: 1, conversationId: 1, createdAt: 1 });
    await this.replies.createIndex({ tenant: 1, createdAt: 1, _id: 1 });
    await this.messages.createIndex({ tenant: 1, conversationId: 1, queuedAt: 1 });
    // Indexes of earlier versions that those above replace.
    await dropIfPresent(this.turns, 'conversationId_1_at_-1');
    await dropIfPresent(this.turns, 'conversationId_1_at_-1_seq_-1');
    await dropIfPresent(this.replies, 'conversationId_1_createdAt_1');
    await dropIfPresent(this.messages, 'conversationId_1_queuedAt_1');
    // Age fields, for retention (TTL indexes on MongoDB, range deletes elsewhere; a TTL index is a single field, so
    // these do not lead with the tenant): see Retention. The feed of an admin, over every tenant, uses the replies'.
    await this.turns.createIndex({ at: 1 });
    await this.messages.createIndex({ startedAt: 1 });
    await this.conversations.createIndex({ createdAt: 1 });
    await this.replies.createIndex({ createdAt: 1 });
    await this.knowledge.createIndex({ source: 1 });
  }

  /** Whether the database answers. */
  async ping(): Promise<boolean> {
    return this.db.command({ ping: 1 }).then(
      () => true,
      () => false,
    );
  }

  /** Closes the client; `force` does not wait for operations in flight (a shutdown past its grace period). */
  async close(force = false): Promise<void> {
    await this.client.close(force);
  }
}

/**
 * Drops an index of an earlier version. Processes starting together may race to drop it; the loser finds it gone
 * (IndexNotFound, code 27), which is the state it wanted.
 */
async function dropIfPresent<T extends Document>(collection: Collection<T>, name: string): Promise<void> {
  if (!(await collection.indexExists(name))) return;
  await collection.dropIndex(name).catch((err: unknown) => {
    if ((err as { code?: number }).code !== 27) throw err;
  });
}

/** MongoDB driver errors that mean the server could not be reached in time, by class name (the driver's own). */
const UNREACHABLE = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoTopologyClosedError',
  'MongoNotConnectedError',
]);

/** Whether an error (or its cause) means the database could not be reached, as opposed to refusing a command. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++)
    if (UNREACHABLE.has(e.name)) return true;
  return false;
}
