import type { QueuedJob } from '../queue/batch-collector.js';
import { randomUUID } from 'node:crypto';
import { storableText, type ConversationTurn, type ReplyDocument } from '../storage/reply-document.js';
import { PromptEncoder, type EncodedPrompt } from '../conversation/prompt-encoder.js';
import { cannedCompletion } from '../conversation/canned-completion.js';
import type { ReplyPlanner } from '../conversation/reply-planner.js';
import { errorCodeOf, errorMessageOf } from '../errors/errors.js';
import type { GenerationRequest, TextGenerator } from '../generation/text-generator.js';
import type { Logger } from '../logging/logger.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { MessageStateRepository } from '../storage/message-state-repository.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import type { ReplyStreamPublisher } from '../queue/reply-stream.js';
import type { StoredReplyMark, StoredReplyMarks } from '../queue/stored-reply-marks.js';
import { conversationTurns, heardBefore } from './conversation-turns.js';
import type { ConversationOrder } from '../queue/conversation-order.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { ReplyCounters } from '../metrics/reply-counters.js';
import { idField } from './reply-key.js';
import type { ReplySpeaker } from './reply-speaker.js';
import type { MessageTranscriber, Transcribed } from './message-transcriber.js';
import { RecognizerError } from '../errors/errors.js';
import {
  markOf,
  sortJobs,
  type Answer,
  type JobOutcome,
  type ParsedJob,
  type PlannedJob,
  type VoiceJob,
} from './batch-stages.js';

export type { JobOutcome } from './batch-stages.js';

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
  /** Speaks the replies of messages that ask for speech, after they are stored. */
  speaker?: ReplySpeaker;
  /** Turns voice messages into text; without it they fail with ERR_RECOGNIZER. */
  transcriber?: MessageTranscriber;
  /** Answers the messages of one conversation in the order they were accepted; without it, in batch order. */
  order?: ConversationOrder;
}

/**
 * handle_messages for one batch, in stages: parse every job; skip the ones a previous pass answered (their marks);
 * transcribe the voice messages; hand back those whose conversation has an earlier message unanswered; record the
 * new valid ones as processing; plan each (unreadable text, intent,
 * handler); store the answers that need no model at once; generate the rest in ONE call; store those; mark the jobs,
 * append the turns and report each job's outcome. Storage errors propagate (the caller retries the whole batch); a
 * bad message, bad audio, a failing handler or a generation failure only ever fails its own message.
 */
export class BatchProcessor {
  private readonly prompts: PromptEncoder;

  constructor(
    private readonly deps: BatchProcessorDeps,
    private readonly opts: BatchProcessorOptions,
  ) {
    this.prompts = new PromptEncoder(deps.generator.tokenizer, deps.generator.window);
  }

  /** Processes one batch. Throws only for storage failures, which are transient. */
  async process(jobs: readonly QueuedJob[], log: Logger): Promise<JobOutcome[]> {
    const { stream, metrics } = this.deps;
    const startedAt = new Date();
    // Names this pass in the reply streams: a retried message streams again under a new attempt.
    const attempt = randomUUID().slice(0, 8);
    // Where a batch's time goes, logged with it: on a slow database the reads and writes, not the model, bound a worker.
    const steps: Record<string, number> = {};
    let mark = performance.now();
    const lap = (name: string) => {
      const now = performance.now();
      steps[name] = Math.round(now - mark);
      mark = now;
    };

    const { refused, parsed, voice, malformed } = sortJobs(jobs);
    const marked = await this.marked([...parsed, ...voice, ...malformed]);
    lap('existing');
    const heard = await this.transcribe(voice.filter((v) => !marked.has(v.key)));
    lap('transcribe');
    // A message whose conversation has an earlier one still unanswered waits for it (parked until that one is released).
    const { admitted: fresh, waiting } = await this.inOrder([
      ...parsed.filter((p) => !marked.has(p.key)),
      ...heard.heard,
    ]);
    lap('order');
    const freshMalformed = malformed.filter((m) => !marked.has(m.key));
    // The pass that stored these may have died before telling their stream readers.
    for (const key of marked.keys()) stream?.done(key);

    await this.markProcessing(fresh, startedAt);
    lap('states');
    const [history, planned] = await Promise.all([
      this.deps.conversations.history(fresh.map((p) => p.message.conversationId)),
      this.plan(fresh),
    ]);
    lap('historyAndPlans');

    // Answers that need no model (templates, status, handlers, "please rephrase", contract errors) are stored before
    // generation starts, so they never wait for the batch's slowest reply: one bulk write for them, one for the
    // generated ones (a batch of only one kind makes one write; storing nothing is no round trip).
    const early = [
      ...freshMalformed.map((m): Answer => ({ job: m.job, key: m.key, error: m.error })),
      ...heard.failed,
      ...planned.flatMap((p) => this.answerWithoutModel(p, history, startedAt, attempt)),
    ];
    const earlyDocs = early.map((a) =>
      this.replyDocument(a, { queuedAt: new Date(a.job.timestamp), startedAt, finishedAt: new Date(), inferenceMs: 0 }),
    );
    const stored = await this.store(earlyDocs);
    lap('storeEarly');

    const toGenerate = planned.filter((p) => p.plan.kind === 'generate');
    const prompts = toGenerate.map((p) => this.request(p, history, startedAt));
    lap('prompts');
    const results = await this.generate(
      prompts.map((x) => x.request),
      toGenerate.map((p) => p.key),
      attempt,
    );
    lap('generate');
    const inferenceMs = steps.generate;
    const finishedAt = new Date();
    const late = toGenerate.map((p, i): Answer => {
      const r = results[i];
      const base = {
        job: p.job,
        key: p.key,
        message: p.message,
        transcript: p.transcript,
        plan: p.plan,
        place: p.place,
        passageIds: prompts[i].passageIds,
      };
      return r.finishReason === 'error' ? { ...base, error: r.error } : { ...base, output: r };
    });
    const lateDocs = late.map((a) =>
      this.replyDocument(a, { queuedAt: new Date(a.job.timestamp), startedAt, finishedAt, inferenceMs }),
    );
    for (const id of await this.store(lateDocs)) stored.add(id);
    lap('storeGenerated');
    const answers = [...early, ...late];
    const docs = [...earlyDocs, ...lateDocs];
    metrics?.recordBatch(
      jobs.length,
      inferenceMs,
      docs.filter((d) => stored.has(d._id)),
    );

    // Replies found stored by the insert's duplicate key had no mark: read those few, for their turns and marks.
    const found = await this.deps.replies.getMany(answers.filter((a) => !stored.has(a.key)).map((a) => a.key));
    const byKey = new Map(answers.map((a) => [a.key, a]));
    const unmarked = new Map([...found].map(([key, doc]) => [key, markOf(doc, byKey.get(key)?.place)]));
    for (const [key, prior] of unmarked) {
      marked.set(key, prior);
      stream?.done(key);
    }
    await this.deps.marks.mark([
      ...answers.flatMap((a, i) => (stored.has(a.key) ? [{ job: a.job, reply: markOf(docs[i], a.place) }] : [])),
      ...[...unmarked].flatMap(([key, reply]) => {
        const a = byKey.get(key);
        return a ? [{ job: a.job, reply }] : [];
      }),
    ]);
    lap('marks');
    const redelivered = [...parsed, ...heardBefore(voice, marked)].filter((p) => marked.has(p.key));
    await this.deps.conversations.appendMany(
      conversationTurns(
        answers.filter((a) => stored.has(a.key)),
        redelivered,
        marked,
      ),
    );
    lap('turns');
    // Only now, with its turn written, may the next message of each conversation go: every text or voice message of
    // the batch that did not wait is answered (or was, by an earlier pass).
    const waits = new Set(waiting.map((w) => w.key));
    await this.deps.order?.release(
      [...parsed, ...voice]
        .filter((p) => !waits.has(p.key))
        .map((p) => ({ messageId: p.key, conversationId: p.message.conversationId })),
    );

    const outcomes = new Map<QueuedJob, JobOutcome>(refused);
    for (const w of waiting)
      outcomes.set(w.job, { kind: 'deferred', messageId: w.key, conversationId: w.message.conversationId });
    for (const p of [...parsed, ...voice, ...malformed])
      if (marked.has(p.key)) outcomes.set(p.job, { kind: 'already-stored', messageId: p.key });
    for (const a of answers) {
      // Not stored: a reply with this key was there already (its worker died before marking it, or an enqueue after
      // BullMQ trimmed the job record).
      if (!stored.has(a.key)) outcomes.set(a.job, { kind: 'already-stored', messageId: a.key });
      else
        outcomes.set(
          a.job,
          a.error ? { kind: 'failed', messageId: a.key, error: a.error } : { kind: 'replied', messageId: a.key },
        );
    }
    this.deps.speaker?.add(
      answers.flatMap((a) =>
        stored.has(a.key) && a.message?.speech && a.output
          ? [{ messageId: a.key, text: storableText(a.output.text) }]
          : [],
      ),
    );
    const failed = answers.filter((a) => a.error).length;
    log.info(
      {
        jobs: jobs.length,
        generated: toGenerate.length,
        answeredWithoutModel: planned.length - toGenerate.length,
        failed,
        refused: refused.size,
        inferenceMs,
        stepsMs: steps,
      },
      'batch stored',
    );
    return jobs.map((job) => {
      const outcome = outcomes.get(job);
      // Every job is refused, found marked or answered above.
      if (!outcome) throw new Error(`batch processor: job ${job.id} has no outcome`);
      return outcome;
    });
  }

  /**
   * Wakes the messages parked by this worker that have become the first of their conversations: the conversation's
   * earlier message was released while they were still in flight, so its release could not wake them.
   */
  async wake(parked: ReadonlyArray<{ messageId: string; conversationId: string }>): Promise<void> {
    await this.deps.order?.wake(parked);
  }

  /**
   * Splits fresh messages into those their conversations' order lets through now and those that wait. A question
   * about the earlier messages' state ("where is my answer?") never waits for them: it is answered from that state.
   */
  private async inOrder(fresh: ParsedJob[]): Promise<{ admitted: ParsedJob[]; waiting: ParsedJob[] }> {
    if (!this.deps.order) return { admitted: fresh, waiting: [] };
    const order = await this.deps.order.admit(
      fresh.map((p) => ({ messageId: p.key, conversationId: p.message.conversationId, p })),
    );
    // Only a message that would wait has its words looked at here; the planner recognises every message anyway.
    const status = order.waiting.filter(
      (e) => (e.p.message.mode ?? 'assistant') === 'assistant' && this.deps.planner.asksForStatus(e.p.message.text),
    );
    const admitted = [...order.admitted, ...status].map(({ p }) => ({ ...p, place: order.places.get(p.key) }));
    return { admitted, waiting: order.waiting.filter((e) => !status.includes(e)).map((e) => e.p) };
  }

  /**
   * The marks of the jobs that ran before: retried after a failure (attemptsMade > 0), or taken over after their
   * worker died or lost its lock (stalledCounter > 0). Read from Redis, never the database; a first delivery skips
   * the read. A job whose reply is stored but not marked is answered again, and the insert's duplicate key keeps the
   * first reply: still exactly one stored reply.
   */
  private async marked(jobs: ReadonlyArray<{ job: QueuedJob; key: string }>): Promise<Map<string, StoredReplyMark>> {
    return this.deps.marks.read(jobs.filter((p) => p.job.attemptsMade > 0 || p.job.stalledCounter > 0));
  }

  /** The voice messages' transcripts; without a transcriber, each fails on its own. */
  private async transcribe(voice: readonly VoiceJob[]): Promise<Transcribed> {
    if (voice.length === 0) return { heard: [], failed: [] };
    if (this.deps.transcriber) return this.deps.transcriber.transcribeAll(voice);
    const error = new RecognizerError('this worker transcribes no voice messages', {
      hint: 'start workers with AVA_ASR other than off',
    });
    return { heard: [], failed: voice.map((v) => ({ job: v.job, key: v.key, error })) };
  }

  private async markProcessing(fresh: readonly ParsedJob[], startedAt: Date): Promise<void> {
    await this.deps.states.markProcessing(
      fresh.map((p) => ({
        _id: p.key,
        conversationId: p.message.conversationId,
        userId: p.message.userId,
        status: 'processing',
        queuedAt: new Date(p.job.timestamp),
        startedAt,
        attempts: p.job.attemptsMade,
      })),
    );
  }

  private async plan(fresh: readonly ParsedJob[]): Promise<PlannedJob[]> {
    const plans = await this.deps.planner.planAll(
      fresh.map((p) => ({ message: p.message, queuedAt: new Date(p.job.timestamp) })),
    );
    return fresh.map((p, i) => ({ ...p, plan: plans[i] }));
  }

  /**
   * A planned reply or failure as an answer (a reply streams at once); nothing for a plan that needs the model. A
   * reply is bounded by the message's token budget and stop strings and counted as if the model had written it.
   */
  private answerWithoutModel(
    p: PlannedJob,
    history: ReadonlyMap<string, ConversationTurn[]>,
    startedAt: Date,
    attempt: string,
  ): Answer[] {
    const base = { job: p.job, key: p.key, message: p.message, transcript: p.transcript, plan: p.plan, place: p.place };
    if (p.plan.kind === 'fail') return [{ ...base, error: p.plan.error }];
    if (p.plan.kind !== 'reply') return [];
    const reply = cannedCompletion(this.deps.generator.tokenizer, p.plan.text, {
      maxTokens: p.message.generation?.maxNewTokens,
      stop: p.message.generation?.stop,
    });
    const promptTokens = this.prompt(p, history, startedAt).ids.length;
    this.deps.stream?.token(p.key, attempt, reply.text);
    const usage = { prompt: promptTokens, completion: reply.tokens };
    return [
      {
        ...base,
        passageIds: p.plan.passageIds,
        usage,
        output: { text: reply.text, promptTokens: 0, generatedTokens: 0, finishReason: reply.finishReason },
      },
    ];
  }

  /** The generation request of a job the model answers, and the passages its prompt kept. */
  private request(
    p: PlannedJob,
    history: ReadonlyMap<string, ConversationTurn[]>,
    startedAt: Date,
  ): { request: GenerationRequest; passageIds: string[] } {
    const passages = p.plan.kind === 'generate' ? p.plan.passages : [];
    const { maxNewTokens: _, ...sampling } = p.message.generation ?? {};
    const prompt = this.prompt(p, history, startedAt);
    return {
      request: { ...sampling, promptIds: prompt.ids, maxNewTokens: prompt.maxNewTokens },
      passageIds: passages.slice(0, prompt.passages).flatMap((x) => (x.id ? [x.id] : [])),
    };
  }

  /** A job's prompt as the model sees it: plain text, or its instructions, passages, history and text. */
  private prompt(p: PlannedJob, history: ReadonlyMap<string, ConversationTurn[]>, startedAt: Date): EncodedPrompt {
    const m = p.message;
    const maxNewTokens = m.generation?.maxNewTokens ?? this.opts.maxNewTokens;
    if (m.mode === 'text') return this.prompts.encodePlain(m.text, maxNewTokens);
    const passages = p.plan.kind === 'generate' ? p.plan.passages : [];
    // A dialogue sent with the message (an OpenAI-style client's) is the history; else the one AVA keeps.
    const turns = m.history
      ? m.history.map((t, i) => ({ messageId: `${m.messageId}.h${i}`, ...t, at: startedAt }))
      : (history.get(m.conversationId) ?? []);
    return this.prompts.encode(
      { passages, turns, text: m.text, ...(m.instructions ? { instructions: m.instructions } : {}) },
      maxNewTokens,
    );
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

  private replyDocument(a: Answer, timings: ReplyDocument['timings']): ReplyDocument {
    const conversationId = a.message?.conversationId ?? idField(a.job.data, 'conversationId');
    const userId = a.message?.userId ?? idField(a.job.data, 'userId');
    return {
      _id: a.key,
      ...(conversationId ? { conversationId } : {}),
      ...(userId ? { userId } : {}),
      ...(a.output
        ? {
            status: 'replied',
            text: storableText(a.output.text),
            finishReason: a.output.finishReason,
            usage: a.usage ?? { prompt: a.output.promptTokens, completion: a.output.generatedTokens },
          }
        : { status: 'failed', error: { code: errorCodeOf(a.error), message: storableText(errorMessageOf(a.error)) } }),
      ...(a.transcript ? { transcript: a.transcript } : {}),
      ...(a.plan ? { intent: a.plan.intent, recognition: a.plan.recognition } : {}),
      ...(a.passageIds && a.passageIds.length > 0 ? { passageIds: [...a.passageIds] } : {}),
      model: this.deps.generator.model,
      tokens: { prompt: a.output?.promptTokens ?? 0, generated: a.output?.generatedTokens ?? 0 },
      timings,
      createdAt: timings.finishedAt,
    };
  }

  /** One generator call for the batch; each request ends with its own result, so a failure fails only its message. */
  private async generate(requests: GenerationRequest[], keys: string[], attempt: string) {
    if (requests.length === 0) return [];
    const { stream } = this.deps;
    return this.deps.generator.generate(
      requests.map((r, i) => (stream ? { ...r, onText: (text: string) => stream.token(keys[i], attempt, text) } : r)),
    );
  }
}
