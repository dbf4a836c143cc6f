import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { parseMessage, type Message } from '../contract/message-contract.js';
import { storableText, type ConversationTurn, type ReplyDocument } from '../contract/reply-document.js';
import { buildPrompt } from '../conversation/prompt-builder.js';
import type { ReplyPlan, ReplyPlanner } from '../conversation/reply-planner.js';
import { AvaError, ContractError, JobIdError, errorCodeOf, errorMessageOf } from '../errors/errors.js';
import type { GenerationOutput, GenerationRequest, TextGenerator } from '../generation/text-generator.js';
import type { Logger } from '../logging/logger.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { MessageStateRepository } from '../storage/message-state-repository.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import type { ReplyStreamPublisher } from '../queue/reply-stream.js';
import type { StoredReplyMark, StoredReplyMarks } from '../queue/stored-reply-marks.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { ReplyCounters } from '../metrics/reply-counters.js';
import { idField, replyKeyOf } from './reply-key.js';

/** What happened to one job of a batch; decides how it is acknowledged. */
export type JobOutcome =
  | { kind: 'replied'; messageId: string }
  | { kind: 'failed'; messageId: string; error: AvaError }
  | { kind: 'already-stored'; messageId: string }
  /** No reply can be keyed safely for the job (its data names another message, or its id is unusable). */
  | { kind: 'refused'; jobId: string; error: AvaError };

/** Settings of the processor. */
export interface BatchProcessorOptions {
  maxNewTokens: number;
}

/** What the processor works with. */
export interface BatchProcessorDeps {
  generator: TextGenerator;
  replies: ReplyRepository;
  conversations: ConversationRepository;
  states: MessageStateRepository;
  planner: ReplyPlanner;
  stream?: ReplyStreamPublisher;
  metrics?: WorkerMetrics;
  counters?: ReplyCounters;
  /** Marks on the jobs whose replies are stored, read when a job is delivered again. */
  marks: StoredReplyMarks;
}

interface Parsed {
  job: Job;
  /** The reply's key: the job id, which BullMQ keeps unique (the producer makes it the messageId). */
  messageId: string;
  message?: Message;
  plan?: ReplyPlan;
  output?: GenerationOutput;
  passageIds?: string[];
  error?: AvaError;
}

/**
 * handle_messages for one batch: parse every job, record the valid new ones as processing, plan each (unreadable
 * text, intent, handler), generate the ones that need the model in ONE call, store every reply (replied or failed)
 * in ONE bulk write, append the turns to their conversations, and report each job's outcome. Storage errors
 * propagate (the caller retries the whole batch); a bad message, a failing handler or a generation failure only
 * ever fails its own message.
 */
export class BatchProcessor {
  constructor(
    private readonly deps: BatchProcessorDeps,
    private readonly opts: BatchProcessorOptions,
  ) {}

  /** Processes one batch. Throws only for storage failures, which are transient. */
  async process(jobs: readonly Job[], log: Logger): Promise<JobOutcome[]> {
    const { generator, replies, conversations, states, planner, stream, metrics, marks } = this.deps;
    const startedAt = new Date();
    // Names this pass in the reply streams: a retried message streams again under a new attempt.
    const attempt = randomUUID().slice(0, 8);
    const refused = new Map<Job, JobOutcome>();
    const parsed: Parsed[] = [];
    for (const job of jobs) {
      const p = parseJob(job);
      if (p instanceof JobIdError) refused.set(job, { kind: 'refused', jobId: String(job.id), error: p });
      else parsed.push(p);
    }
    // Where a batch's time goes, logged with it: on a slow database the reads and writes, not the model, bound a worker.
    const steps: Record<string, number> = {};
    let mark = performance.now();
    const lap = (name: string) => {
      const now = performance.now();
      steps[name] = Math.round(now - mark);
      mark = now;
    };
    // Only a job that ran before can find its reply stored: one retried after a failure (attemptsMade > 0) or one
    // whose worker died or lost its lock (stalledCounter > 0). Their marks are read from Redis, never the database; a
    // first delivery skips the read. A job whose reply is stored but not marked (its worker died in between, or a
    // producer enqueued the messageId again after BullMQ trimmed the job) is generated again, and the insert's
    // duplicate key keeps the first reply: still exactly one stored reply.
    const existing: Map<string, StoredReplyMark> = await marks.read(parsed.filter((p) => p.job.attemptsMade > 0 || (p.job.stalledCounter ?? 0) > 0).map((p) => p.job));
    lap('existing');
    const seen = new Set<string>();
    const fresh: Parsed[] = [];
    const outcomes = new Map<Parsed, JobOutcome>();
    for (const p of parsed) {
      // A re-delivered job (its reply is stored) or a second job carrying the same messageId in this batch.
      if (existing.has(p.messageId) || seen.has(p.messageId)) {
        outcomes.set(p, { kind: 'already-stored', messageId: p.messageId });
        // The pass that stored it may have died before telling its stream readers.
        if (existing.has(p.messageId)) stream?.done(p.messageId);
      } else fresh.push(p);
      seen.add(p.messageId);
    }

    const valid = fresh.filter((p) => p.message);
    await states.markProcessing(
      valid.map((p) => ({ _id: p.messageId, conversationId: p.message!.conversationId, userId: p.message!.userId, status: 'processing', queuedAt: new Date(p.job.timestamp), startedAt, attempts: p.job.attemptsMade })),
    );
    lap('states');
    const [history] = await Promise.all([
      conversations.history(valid.map((p) => p.message!.conversationId)),
      Promise.all(valid.map(async (p) => (p.plan = await planner.plan(p.message!, new Date(p.job.timestamp))))),
    ]);
    lap('historyAndPlans');
    const toGenerate = valid.filter((p) => p.plan!.kind === 'generate');
    for (const p of valid) {
      if (p.plan!.kind === 'reply') {
        p.output = { text: p.plan!.text, promptTokens: 0, generatedTokens: 0, finishReason: 'stop' };
        p.passageIds = p.plan!.passageIds;
        stream?.token(p.messageId, attempt, p.plan!.text);
      } else if (p.plan!.kind === 'fail') p.error = p.plan!.error;
    }
    // Answers that need no model (templates, status, handlers, "please rephrase", contract errors) are stored before
    // generation starts, so they never wait for the batch's slowest reply: one bulk write for them, one for the
    // generated ones (a batch of only one kind makes one write; storing nothing is no round trip).
    const earlyFinishedAt = new Date();
    const earlyDocs = fresh.filter((p) => p.plan?.kind !== 'generate').map((p) => this.replyDocument(p, { queuedAt: new Date(p.job.timestamp), startedAt, finishedAt: earlyFinishedAt, inferenceMs: 0 }));
    const stored = await this.store(earlyDocs);
    lap('storeEarly');

    const requests = toGenerate.map((p) => {
      const m = p.message!;
      const plan = p.plan as Extract<ReplyPlan, { kind: 'generate' }>;
      const { maxNewTokens = this.opts.maxNewTokens, ...sampling } = m.generation ?? {};
      const budget = generator.countTokens && generator.window ? { maxTokens: generator.window - maxNewTokens, countTokens: generator.countTokens.bind(generator) } : undefined;
      // A dialogue sent with the message (an OpenAI-style client's) is the history; else the one AVA keeps.
      const turns = m.history ? m.history.map((t, i) => ({ messageId: `${m.messageId}.h${i}`, ...t, at: startedAt })) : (history.get(m.conversationId) ?? []);
      const built = buildPrompt({ passages: plan.passages, turns, text: m.text }, budget);
      p.passageIds = plan.passages.slice(0, built.passages).flatMap((x) => (x.id ? [x.id] : []));
      return { prompt: built.prompt, maxNewTokens, ...sampling };
    });
    lap('prompts');
    const results = await this.generate(requests, toGenerate.map((p) => p.messageId), attempt);
    lap('generate');
    const inferenceMs = steps.generate;
    const finishedAt = new Date();
    toGenerate.forEach((p, i) => {
      const r = results[i];
      if (r.finishReason === 'error') p.error = r.error;
      else p.output = r;
    });
    const lateDocs = toGenerate.map((p) => this.replyDocument(p, { queuedAt: new Date(p.job.timestamp), startedAt, finishedAt, inferenceMs }));
    for (const id of await this.store(lateDocs)) stored.add(id);
    lap('storeGenerated');
    const docs = [...earlyDocs, ...lateDocs];
    metrics?.recordBatch(jobs.length, inferenceMs, docs.filter((d) => stored.has(d._id)));
    // Replies found stored by the insert's duplicate key had no mark: read those few, for their turns and marks.
    const unmarked = await replies.existing(fresh.filter((p) => !stored.has(p.messageId)).map((p) => p.messageId));
    for (const [id, prior] of unmarked) {
      existing.set(id, prior);
      stream?.done(id);
    }
    const byId = new Map(parsed.map((p) => [p.messageId, p.job]));
    await marks.mark([
      ...docs.filter((d) => stored.has(d._id)).map((d) => ({ job: byId.get(d._id)!, reply: { status: d.status, ...(d.text !== undefined ? { text: d.text } : {}), ...(d.intent ? { intent: d.intent } : {}) } })),
      ...[...unmarked].map(([id, reply]) => ({ job: byId.get(id)!, reply })),
    ]);
    lap('marks');
    await this.appendTurns(valid.filter((p) => stored.has(p.messageId)), stored, parsed.filter((p) => existing.has(p.messageId)), existing);
    lap('turns');

    for (const p of fresh) {
      // Not stored: a reply with this messageId was there already (an enqueue after the job record was trimmed).
      if (!stored.has(p.messageId)) outcomes.set(p, { kind: 'already-stored', messageId: p.messageId });
      else outcomes.set(p, p.error ? { kind: 'failed', messageId: p.messageId, error: p.error } : { kind: 'replied', messageId: p.messageId });
    }
    const failed = fresh.filter((p) => p.error).length;
    log.info({ jobs: jobs.length, generated: toGenerate.length, answeredWithoutModel: valid.length - toGenerate.length, failed, refused: refused.size, inferenceMs, stepsMs: steps }, 'batch stored');
    const byJob = new Map(parsed.map((p) => [p.job, outcomes.get(p)!]));
    return jobs.map((job) => refused.get(job) ?? byJob.get(job)!);
  }

  /**
   * Stores replies in one bulk write and tells stream readers they are done; returns the ids newly stored. Streams
   * are flushed first, so a reader that finds a reply stored has its every token in the stream already.
   */
  private async store(docs: readonly ReplyDocument[]): Promise<Set<string>> {
    await this.deps.stream?.flush();
    const stored = await this.deps.replies.storeAll(docs);
    for (const d of docs) this.deps.stream?.done(d._id);
    await this.deps.counters?.record(docs.filter((d) => stored.has(d._id)));
    return stored;
  }

  private replyDocument(p: Parsed, timings: ReplyDocument['timings']): ReplyDocument {
    const conversationId = p.message?.conversationId ?? idField(p.job.data, 'conversationId');
    const userId = p.message?.userId ?? idField(p.job.data, 'userId');
    return {
      _id: p.messageId,
      ...(conversationId ? { conversationId } : {}),
      ...(userId ? { userId } : {}),
      ...(p.output ? { status: 'replied', text: storableText(p.output.text), finishReason: p.output.finishReason } : { status: 'failed', error: { code: errorCodeOf(p.error), message: storableText(errorMessageOf(p.error)) } }),
      ...(p.plan ? { intent: p.plan.intent, recognition: p.plan.recognition } : {}),
      ...(p.passageIds && p.passageIds.length > 0 ? { passageIds: p.passageIds } : {}),
      model: this.deps.generator.model,
      tokens: { prompt: p.output?.promptTokens ?? 0, generated: p.output?.generatedTokens ?? 0 },
      timings,
      createdAt: timings.finishedAt,
    };
  }

  /** One generator call for the batch; each request ends with its own result, so a failure fails only its message. */
  private async generate(requests: GenerationRequest[], messageIds: string[], attempt: string) {
    if (requests.length === 0) return [];
    const { stream } = this.deps;
    return this.deps.generator.generate(requests.map((r, i) => (stream ? { ...r, onText: (text: string) => stream.token(messageIds[i], attempt, text) } : r)));
  }

  /**
   * Appends the turns of the replies stored now and, again, of replies an earlier attempt stored: that attempt may
   * have failed after storing its replies and before writing their turns, and turns are inserts keyed by messageId,
   * so writing one twice is a no-op. Unreadable messages and their "please rephrase" stay out of the history.
   */
  private async appendTurns(valid: Parsed[], stored: Set<string>, redelivered: Parsed[], existing: ReadonlyMap<string, StoredReplyMark>): Promise<void> {
    const byConversation = new Map<string, { userId: string; turns: ConversationTurn[] }>();
    const add = (p: Parsed, text: string, intent?: string) => {
      if (intent === 'invalid') return;
      const m = p.message!;
      const entry = byConversation.get(m.conversationId) ?? { userId: m.userId, turns: [] };
      // Enqueue time orders the turns as the user sent them, even within one batch.
      entry.turns.push({ messageId: m.messageId, user: m.text, assistant: text, intent, at: new Date(p.job.timestamp) });
      byConversation.set(m.conversationId, entry);
    };
    for (const p of valid) if (p.output && stored.has(p.messageId)) add(p, storableText(p.output.text), p.plan?.intent);
    for (const p of redelivered) {
      const prior = existing.get(p.messageId);
      if (p.message && prior?.status === 'replied' && prior.text !== undefined) add(p, prior.text, prior.intent);
    }
    await this.deps.conversations.appendMany([...byConversation].map(([conversationId, { userId, turns }]) => ({ conversationId, userId, turns })));
  }
}

/** Parses a job under its reply key (see {@link replyKeyOf}); malformed data gets a `failed` reply of its own. */
function parseJob(job: Job): Parsed | JobIdError {
  const key = replyKeyOf(String(job.id), job.data);
  if (key instanceof JobIdError) return key;
  try {
    return { job, messageId: key, message: parseMessage(job.data) };
  } catch (err) {
    const error = err instanceof AvaError ? err : new ContractError([{ path: '(root)', message: errorMessageOf(err) }]);
    return { job, messageId: key, error };
  }
}
