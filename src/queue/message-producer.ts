import { Queue, type JobsOptions } from 'bullmq';
import { QueueView } from './queue-view.js';
import type { Redis } from 'ioredis';
import {
  MESSAGE_JOB_NAME,
  parseMessage,
  type InboundMessage,
  type MessageInput,
} from '../contract/message-contract.js';
import { messageDigest } from '../contract/message-digest.js';
import { scopedKey } from '../contract/scoped-key.js';
import { ContractError, IdempotencyConflictError, ServiceUnavailableError } from '../errors/errors.js';
import { ConversationOrder, type Registration } from './conversation-order.js';
import { messageJobId, type RedisKeys } from './redis-keys.js';
import { loadConfig } from '../config/config.js';

/** Producer settings. */
export interface ProducerOptions {
  /** Attempts for transient failures (database down). */
  attempts: number;
  /** First retry delay in ms, doubled each attempt. */
  backoffMs: number;
  /**
   * Replicas that must have an enqueue (Redis `WAIT`) before it is acknowledged, so that a failover to a replica
   * cannot lose it; 0 (default) acknowledges once the primary has it.
   */
  minReplicas?: number;
  /** The tenant of messages that name none (default: the default tenant). */
  tenant?: string;
  /** Most unanswered messages a tenant may have queued; 0 (default): no bound. */
  maxQueuedPerTenant?: number;
  /** Whether workers take tenants in turn (default) rather than first come, first served. */
  fairShare?: boolean;
  /**
   * How long Redis remembers what a message left there: a conversation's owner as long as the conversation is kept
   * (`AVA_RETENTION_CONVERSATIONS_DAYS`, 0: for ever), failed jobs `AVA_QUEUE_KEEP_FAILED_DAYS`. Default: those
   * settings' defaults.
   */
  keep?: { conversationDays: number; failedJobDays: number };
  /**
   * The digests of stored replies by scoped messageId (null for a reply stored without one), where the producer can
   * read the database: a messageId used past Redis's memory of it is then still recognised.
   */
  storedDigests?: (keys: readonly string[]) => Promise<ReadonlyMap<string, string | null>>;
}

/** What an enqueue returns per message. */
export interface EnqueueResult {
  messageId: string;
  /** Always `queued`: accepted, now or by an earlier enqueue of the same message, and answered once. */
  status: 'queued';
}

/**
 * What BullMQ keeps of finished jobs: a completed job's stored reply is the record, so only the latest thousand, for
 * an hour, stay (Redis memory does not grow with traffic); failed jobs as configured, for the reconciler, at most
 * 100,000.
 */
const KEEP_COMPLETED = { age: 3600, count: 1_000 };
const MAX_FAILED_KEPT = 100_000;
const DAY_MS = 24 * 3_600_000;
/** The settings' defaults, for producers built without them. */
const DEFAULT_KEEP = (() => {
  const { retention, queue } = loadConfig({});
  return { conversationDays: retention.conversations, failedJobDays: queue.keepFailedDays };
})();
/**
 * How long Redis remembers a message's digest: a day, as Stripe keeps idempotency keys. Past it, a producer that can
 * read the database recognises the message by its stored reply.
 */
const DIGEST_TTL_MS = DAY_MS;
/** A well-formed fileId no upload has: a message checked before its part is stored (its digest ignores the fileId). */
const UNSTORED_FILE = '000000000000000000000000';
/** BullMQ's highest priority number (lowest priority). */
const MAX_PRIORITY = 2_097_152;

/**
 * Validates messages against the contract and enqueues them as BullMQ jobs named `message` whose job id stands for
 * the tenant's messageId ({@link messageJobId} of its scoped key). Sending a message again is idempotent, as Stripe's
 * idempotency keys are: the same messageId with the same content is the same message (accepted, answered once),
 * with other content it is refused (409). With fair share, each job's priority is its rank among its tenant's
 * unanswered messages, so that workers take tenants in turn: a tenant's 10,000th message waits behind other
 * tenants' first ones, not the other way round.
 */
export class MessageProducer {
  private readonly queue: Queue;

  private readonly keep: { conversationDays: number; failedJobDays: number };

  constructor(
    private readonly connection: Redis,
    private readonly keys: RedisKeys,
    private readonly opts: ProducerOptions,
  ) {
    this.queue = new Queue(keys.queueName, { connection, prefix: keys.prefix });
    this.keep = opts.keep ?? DEFAULT_KEEP;
  }

  /** Validates and enqueues one message. Throws {@link ContractError} naming each bad field. */
  async enqueue(input: MessageInput): Promise<EnqueueResult> {
    const [result] = await this.enqueueAll([this.parse(input)], () => '');
    return result;
  }

  /**
   * Validates every message, then enqueues them all in one round trip. Nothing is enqueued when any message is
   * invalid, reuses a messageId or writes to another user's conversation; the error names each by index.
   */
  async enqueueMany(inputs: readonly MessageInput[]): Promise<EnqueueResult[]> {
    const issues: Array<{ path: string; message: string }> = [];
    const messages: InboundMessage[] = [];
    inputs.forEach((input, i) => {
      try {
        messages.push(this.parse(input));
      } catch (err) {
        if (!(err instanceof ContractError)) throw err;
        for (const issue of err.issues) issues.push({ path: `[${i}].${issue.path}`, message: issue.message });
      }
    });
    if (issues.length > 0) throw new ContractError(issues);
    return this.enqueueAll(messages, (i) => `[${i}].`);
  }

  /**
   * Enqueues a message whose part must be stored first (a voice message's audio), storing it only for a new message:
   * `message(fileId)` builds the message around the stored part, `upload` stores it under the message's scoped key and
   * tenant, and discards it should the enqueue then fail. Sent again with the same content (fields and audio) the
   * message is accepted without storing anything; with other content it is refused before anything is stored.
   * Returns the stored part's id, or none when nothing was stored.
   */
  async enqueueWithUpload(
    message: (fileId: string) => MessageInput,
    upload: { store(key: string, tenant: string): Promise<string>; discard(fileId: string): Promise<void> },
  ): Promise<EnqueueResult & { fileId?: string }> {
    const m = this.parse(message(UNSTORED_FILE));
    const key = scopedKey(m.tenant, m.messageId);
    const remembered = await this.connection.get(this.keys.messageDigest(key));
    const known = remembered === null ? (await this.storedDigests([key])).get(key) : remembered;
    if (known !== undefined && known !== null && known !== messageDigest(m))
      throw new IdempotencyConflictError([
        { path: 'messageId', message: `messageId ${m.messageId} was used for a message with other content` },
      ]);
    if (known !== undefined) return { messageId: m.messageId, status: 'queued' };
    const fileId = await upload.store(key, m.tenant);
    try {
      return { ...(await this.enqueue(message(fileId))), fileId };
    } catch (err) {
      await upload.discard(fileId).catch(() => undefined);
      throw err;
    }
  }

  /** A read-only view of the queue: counts, job states, connected workers. */
  get view(): QueueView {
    return new QueueView(this.queue, this.connection, this.keys);
  }

  /** Closes the queue (not the shared connection). */
  async close(): Promise<void> {
    await this.queue.close();
  }

  private parse(input: MessageInput): InboundMessage {
    const tenant = this.opts.tenant;
    return parseMessage(tenant && typeof input === 'object' && !('tenant' in input) ? { ...input, tenant } : input);
  }

  private async enqueueAll(messages: InboundMessage[], pathOf: (i: number) => string): Promise<EnqueueResult[]> {
    const entries = messages.map((m) => ({
      m,
      key: scopedKey(m.tenant, m.messageId),
      digest: messageDigest(m),
    }));
    const stored = await this.storedDigests(entries.map((e) => e.key));
    const conflicts = entries.flatMap((e, i) => {
      const d = stored.get(e.key);
      return d !== undefined && d !== null && d !== e.digest
        ? [
            {
              path: `${pathOf(i)}messageId`,
              message: `messageId ${e.m.messageId} was used for a message with other content`,
            },
          ]
        : [];
    });
    if (conflicts.length > 0) throw new IdempotencyConflictError(conflicts);
    // Messages whose replies are stored are answered: accepted again without being queued again.
    const fresh = entries.filter((e) => !stored.has(e.key));
    const registrations: Registration[] = fresh.map((e) => ({
      messageId: e.key,
      conversationId: scopedKey(e.m.tenant, e.m.conversationId),
      userId: e.m.userId,
      digest: e.digest,
    }));
    const ranks = await ConversationOrder.register(this.connection, this.keys, registrations, {
      maxQueuedPerTenant: this.opts.maxQueuedPerTenant ?? 0,
      ttls: {
        // A message's registration outlives any job of it: a day past the longest a failed job is kept.
        pendingMs: (this.keep.failedJobDays + 1) * DAY_MS,
        ownerMs: this.keep.conversationDays * DAY_MS,
        digestMs: DIGEST_TTL_MS,
      },
      pathOf: (i) => pathOf(entries.indexOf(fresh[i])),
    });
    // Rank 0: accepted earlier and answered since (its job is gone); adding it again would answer it twice.
    const toAdd = fresh.flatMap((e, i) => (ranks[i] > 0 ? [{ e, rank: ranks[i] }] : []));
    await this.queue.addBulk(
      toAdd.map(({ e, rank }) => ({ name: MESSAGE_JOB_NAME, data: e.m, opts: this.jobOptions(e.key, rank) })),
    );
    await this.replicated();
    return messages.map((m) => ({ messageId: m.messageId, status: 'queued' as const }));
  }

  private async storedDigests(keys: readonly string[]): Promise<ReadonlyMap<string, string | null>> {
    return this.opts.storedDigests ? this.opts.storedDigests(keys) : new Map();
  }

  /** Waits until `minReplicas` replicas have every write made so far on the producer's connection. */
  private async replicated(): Promise<void> {
    const wanted = this.opts.minReplicas ?? 0;
    if (wanted === 0) return;
    // BullMQ writes through the connection it was given (it duplicates only for blocking commands), so WAIT on it
    // covers the enqueue just made.
    const acked = await this.connection.wait(wanted, REPLICA_WAIT_MS);
    if (acked < wanted) {
      throw new ServiceUnavailableError(
        `only ${acked} of ${wanted} Redis replicas acknowledged the enqueue within ${REPLICA_WAIT_MS} ms; it may be lost in a failover`,
        { hint: 'retry the enqueue (it is idempotent by messageId)' },
      );
    }
  }

  private jobOptions(key: string, rank: number): JobsOptions {
    return {
      jobId: messageJobId(key),
      attempts: this.opts.attempts,
      backoff: { type: 'exponential', delay: this.opts.backoffMs },
      ...(this.opts.fairShare === false ? {} : { priority: Math.min(rank, MAX_PRIORITY) }),
      removeOnComplete: KEEP_COMPLETED,
      removeOnFail: { age: this.keep.failedJobDays * 24 * 3600, count: MAX_FAILED_KEPT },
    };
  }
}

/** Longest wait for the replicas' acknowledgement of an enqueue, in ms. */
const REPLICA_WAIT_MS = 5_000;
