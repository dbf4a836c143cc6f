import { DEFAULT_TENANT, scopedMessage, splitScopedKey } from '../contract/scoped-key.js';
import { parseMessage } from '../contract/message-contract.js';
import type { FailedReplyDocument } from '../storage/reply-document.js';
import { storableText } from '../contract/storable-text.js';
import { TerminalJobError, errorMessageOf } from '../errors/errors.js';
import type { Logger } from '../logging/logger.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { ReplyCounters } from '../metrics/reply-counters.js';
import type { FailedJob, FailedJobScanner } from '../queue/failed-job-scanner.js';
import type { ReplyStreamPublisher } from '../queue/reply-stream.js';
import type { StoredReplyMarks } from '../queue/stored-reply-marks.js';
import type { ConversationOrder } from '../queue/conversation-order.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import { PeriodicTask } from '../tasks/periodic-task.js';
import { replyKeyOf } from './reply-key.js';
import { settleReplies, storeReplies } from './settle-replies.js';

/** BullMQ's reason for a job that stalled more times than allowed. */
const STALLED_REASON = /stalled more than allowable limit/;

/** What the reconciler works with. */
export interface ReconcilerDeps {
  scanner: FailedJobScanner;
  replies: ReplyRepository;
  marks: StoredReplyMarks;
  stream?: ReplyStreamPublisher;
  metrics?: WorkerMetrics;
  counters?: ReplyCounters;
  /** Recorded on the failed replies it stores. */
  model: { id: string; revision: string };
  /**
   * The conversation order: each job answered here leaves its conversation's pending set, so the next message of
   * the conversation goes at once instead of waiting parked for a wake-up that its failed worker never sent.
   */
  order?: ConversationOrder;
  log: Logger;
}

/**
 * Keeps the promise for jobs that end in BullMQ's failed set without a reply: their attempts ran out (a database
 * outage longer than the retry budget) or they stalled past the limit. Every `intervalMs` one worker of the queue
 * walks the set from where the last walk ended and stores a `failed` reply with `ERR_RETRIES_EXHAUSTED` or
 * `ERR_STALLED` for each such job whose reply is missing, and releases its place in its conversation. A failed
 * store (the database still down) leaves the cursor where it was, so the next pass tries again. Jobs refused for
 * their id (`ERR_JOB_ID`) stay without a reply.
 */
export class FailedJobReconciler {
  private readonly periodic: PeriodicTask;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly intervalMs: number,
  ) {
    this.periodic = new PeriodicTask(() => this.pass(), intervalMs);
  }

  /** Starts the periodic passes. */
  start(): void {
    this.periodic.start();
  }

  /** Stops the passes and waits for one in progress. */
  async stop(): Promise<void> {
    await this.periodic.stop();
  }

  /** One pass now (or the one in progress); never rejects. */
  runOnce(): Promise<void> {
    return this.periodic.runOnce();
  }

  /** Failures are logged and tried again at the next pass: the cursor only moves past what was stored. */
  private async pass(): Promise<void> {
    try {
      await this.deps.scanner.scan(Math.max(this.intervalMs * 3, 30_000), async (jobs) => {
        await this.reconcile(jobs);
      });
    } catch (err) {
      this.deps.log.warn({ err }, 'reconciling failed jobs failed; retrying at the next pass');
    }
  }

  private async reconcile(jobs: FailedJob[]): Promise<number> {
    const candidates = jobs.flatMap((job) => {
      const key = replyKeyOf(job.id, job.data);
      return typeof key === 'string' ? [{ job, key }] : [];
    });
    // Jobs the worker answered (a failed reply with its code) carry a mark; the others get one now. A reply stored by
    // a worker that died before marking it is kept by the insert's duplicate key.
    const marked = await this.deps.marks.read(candidates);
    const unmarked = candidates.filter((c) => !marked.has(c.key));
    const docs = unmarked.map(({ job, key }) => this.failedReply(job, key));
    if (docs.length === 0) return 0;
    const stored = await storeReplies(this.deps, docs);
    await settleReplies(this.deps, (_name, work) => work, {
      written: unmarked.map(({ job }, i) => ({ job, doc: docs[i] })),
      stored,
      marked,
      // A failed reply has no turn; a reply found stored keeps whatever turn the worker that stored it wrote.
      turns: () => [],
      // Each has its reply now (stored here, or found stored): its place in its conversation is done with.
      released: docs.flatMap((d) => (d.conversationId ? [{ messageId: d._id, conversationId: d.conversationId }] : [])),
    });
    for (const d of docs) if (stored.has(d._id)) this.deps.metrics?.failures.inc({ code: d.error.code });
    this.deps.log.warn(
      { stored: stored.size, ids: [...stored].slice(0, 20) },
      'failed replies stored for jobs that ended in the failed set without one',
    );
    return stored.size;
  }

  private failedReply(job: FailedJob, key: string): FailedReplyDocument {
    const error = STALLED_REASON.test(job.failedReason)
      ? new TerminalJobError(
          'ERR_STALLED',
          `its worker stopped while processing it more times than allowed (${job.failedReason})`,
        )
      : new TerminalJobError(
          'ERR_RETRIES_EXHAUSTED',
          `gave up after ${job.attemptsMade} attempts; last error: ${job.failedReason || 'unknown'}`,
        );
    const now = new Date();
    let ids: { conversationId?: string; userId?: string } = {};
    try {
      const m = scopedMessage(parseMessage(job.data));
      ids = { conversationId: m.conversationId, userId: m.userId };
    } catch {
      // Malformed data fails with ERR_CONTRACT in the worker and has its reply; here only for completeness.
    }
    return {
      _id: key,
      tenant: splitScopedKey(key)?.tenant ?? DEFAULT_TENANT,
      ...ids,
      status: 'failed',
      error: { code: error.code, message: storableText(errorMessageOf(error).slice(0, 2_000)) },
      model: this.deps.model,
      tokens: { prompt: 0, generated: 0 },
      timings: {
        queuedAt: new Date(job.timestamp),
        startedAt: new Date(job.processedOn ?? job.timestamp),
        finishedAt: now,
        inferenceMs: 0,
      },
      createdAt: now,
    };
  }
}
