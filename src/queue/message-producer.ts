import { Queue, type JobsOptions } from 'bullmq';
import { QueueView } from './queue-view.js';
import type { Redis } from 'ioredis';
import {
  MESSAGE_JOB_NAME,
  parseMessage,
  type InboundMessage,
  type MessageInput,
} from '../contract/message-contract.js';
import { ContractError, ServiceUnavailableError } from '../errors/errors.js';
import { ConversationOrder } from './conversation-order.js';
import { messageJobId, RedisKeys } from './redis-keys.js';

/** Producer settings. */
export interface ProducerOptions {
  queueName: string;
  prefix: string;
  /** Attempts for transient failures (database down). */
  attempts: number;
  /** First retry delay in ms, doubled each attempt. */
  backoffMs: number;
  /**
   * Replicas that must have an enqueue (Redis `WAIT`) before it is acknowledged, so that a failover to a replica
   * cannot lose it; 0 (default) acknowledges once the primary has it.
   */
  minReplicas?: number;
}

/** Longest wait for the replicas' acknowledgement of an enqueue, in ms. */
const REPLICA_WAIT_MS = 5_000;

/** What an enqueue returns per message. */
export interface EnqueueResult {
  messageId: string;
  /** Always `queued`: a repeated enqueue of the same messageId is accepted and does nothing. */
  status: 'queued';
}

/** Completed and failed jobs are kept this long so that a repeated enqueue of the same messageId stays a no-op. */
const KEEP_COMPLETED = { age: 24 * 3600, count: 100_000 };
const KEEP_FAILED = { age: 7 * 24 * 3600 };

/**
 * Validates messages against the contract and enqueues them as BullMQ jobs named `message` whose job id stands for
 * the messageId ({@link messageJobId}: in a namespace no queue key uses), so enqueueing one message twice is a no-op.
 */
export class MessageProducer {
  private readonly queue: Queue;
  private readonly keys: RedisKeys;

  constructor(
    private readonly connection: Redis,
    private readonly opts: ProducerOptions,
  ) {
    this.queue = new Queue(opts.queueName, { connection, prefix: opts.prefix });
    this.keys = new RedisKeys(opts.prefix, opts.queueName);
  }

  /** Validates and enqueues one message. Throws {@link ContractError} naming each bad field. */
  async enqueue(input: MessageInput): Promise<EnqueueResult> {
    const message = parseMessage(input);
    await ConversationOrder.register(this.connection, this.keys, [message], () => '');
    await this.queue.add(MESSAGE_JOB_NAME, message, this.jobOptions(message));
    await this.replicated();
    return { messageId: message.messageId, status: 'queued' };
  }

  /**
   * Validates every message, then enqueues them all in one round trip. Nothing is enqueued when any message is
   * invalid; the error names each bad one by index.
   */
  async enqueueMany(inputs: readonly MessageInput[]): Promise<EnqueueResult[]> {
    const issues: Array<{ path: string; message: string }> = [];
    const messages: InboundMessage[] = [];
    inputs.forEach((input, i) => {
      try {
        messages.push(parseMessage(input));
      } catch (err) {
        if (!(err instanceof ContractError)) throw err;
        for (const issue of err.issues) issues.push({ path: `[${i}].${issue.path}`, message: issue.message });
      }
    });
    if (issues.length > 0) throw new ContractError(issues);
    // Each message takes its place in its conversation before it is queued: array order within a call.
    await ConversationOrder.register(this.connection, this.keys, messages);
    await this.queue.addBulk(messages.map((m) => ({ name: MESSAGE_JOB_NAME, data: m, opts: this.jobOptions(m) })));
    await this.replicated();
    return messages.map((m) => ({ messageId: m.messageId, status: 'queued' as const }));
  }

  /** A read-only view of the queue: counts, job states, connected workers. */
  get view(): QueueView {
    return new QueueView(this.queue);
  }

  /** Closes the queue (not the shared connection). */
  async close(): Promise<void> {
    await this.queue.close();
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

  private jobOptions(m: InboundMessage): JobsOptions {
    return {
      jobId: messageJobId(m.messageId),
      attempts: this.opts.attempts,
      backoff: { type: 'exponential', delay: this.opts.backoffMs },
      removeOnComplete: KEEP_COMPLETED,
      removeOnFail: KEEP_FAILED,
    };
  }
}
