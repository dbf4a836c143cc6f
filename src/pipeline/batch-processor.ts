import type { QueuedJob } from '../queue/batch-collector.js';
import type { ReplyPlanner } from '../conversation/reply-planner.js';
import type { GenerationRequest, TextGenerator } from '../generation/text-generator.js';
import { carriedSlots } from '../conversation/dialogue-slots.js';
import type { Logger } from '../logging/logger.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { MessageStateRepository } from '../storage/message-state-repository.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import type { ReplyStreamPublisher } from '../queue/reply-stream.js';
import type { StoredReplyMark, StoredReplyMarks } from '../queue/stored-reply-marks.js';
import type { ConversationOrder } from '../queue/conversation-order.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { ReplyCounters } from '../metrics/reply-counters.js';
import { RecognizerError } from '../errors/errors.js';
import { AnswerComposer, type HistoryByConversation } from './answer-composer.js';
import { BatchPass } from './batch-pass.js';
import { batchOutcomes } from './batch-outcomes.js';
import { settleReplies, storeReplies } from './settle-replies.js';
import { conversationTurns, heardBefore } from './conversation-turns.js';
import type { MessageTranscriber, Transcribed } from './message-transcriber.js';
import { replyDocument } from './reply-documents.js';
import { speakReplies, type ReplySpeaker } from './reply-speaker.js';
import {
  answerError,
  sortJobs,
  type Answer,
  type JobOutcome,
  type ParsedJob,
  type PlannedJob,
  type Sorted,
  type StoredAnswers,
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
 * handle_messages for one batch, as typed stages: parsed (sortJobs) → transcribed → admitted in conversation order →
 * planned → answered early (no model: stored at once, so they never wait for the batch's slowest reply) or generated
 * (one generator call) → stored → settled (marks, turns, order released) → outcomes, from which the worker loop
 * acknowledges each job. A step that reads or writes Redis or the database throws a transient StorageError (the
 * caller retries the whole batch); a bad message, bad audio, a failing handler or a generation failure only ever
 * fails its own message.
 */
export class BatchProcessor {
  private readonly composer: AnswerComposer;

  constructor(
    private readonly deps: BatchProcessorDeps,
    opts: BatchProcessorOptions,
  ) {
    this.composer = new AnswerComposer(deps.generator, opts.maxNewTokens);
  }

  /**
   * Processes one batch: an outcome per job, in order. A failing Redis or database step throws a transient
   * StorageError (see BatchPass.io); the worker loop decides by the error's kind whether the batch is retried.
   */
  async process(jobs: readonly QueuedJob[], log: Logger): Promise<JobOutcome[]> {
    const pass = new BatchPass();
    const sorted = sortJobs(jobs);
    const marked = await pass.io('existing', this.marked([...sorted.parsed, ...sorted.voice, ...sorted.malformed]));
    const unmarked = <T extends { key: string }>(xs: readonly T[]) => xs.filter((x) => !marked.has(x.key));
    const heard = await pass.io('transcribe', this.transcribe(unmarked(sorted.voice)));
    // A message whose conversation has an earlier one still unanswered waits for it (parked until that one is released).
    const { admitted, waiting } = await pass.io('order', this.inOrder([...unmarked(sorted.parsed), ...heard.heard]));
    // The pass that stored these may have died before telling their stream readers.
    for (const key of marked.keys()) this.deps.stream?.done(key);
    await pass.io('states', this.markProcessing(admitted, pass.startedAt));
    // History first: a message is planned with the slots its conversation carries (one pipelined Redis read).
    const history = await pass.io(
      'history',
      this.deps.conversations.history(admitted.map((p) => p.message.conversationId)),
    );
    const planned = await pass.io('plans', this.plan(admitted, history));
    const rejected = [
      ...unmarked(sorted.malformed).map((m): Answer => ({ kind: 'rejected', job: m.job, key: m.key, error: m.error })),
      ...heard.failed,
    ];
    const early = await this.answerEarly(pass, rejected, planned, history);
    const late = await this.answerWithModel(pass, planned, history);
    const done: StoredAnswers = {
      answers: [...early.answers, ...late.answers],
      docs: [...early.docs, ...late.docs],
      stored: new Set([...early.stored, ...late.stored]),
    };
    const marks = await this.settle(pass, sorted, marked, waiting, done);
    this.deps.metrics?.recordBatch(
      jobs.length,
      pass.steps,
      late.answers.length,
      done.docs.filter((d) => done.stored.has(d._id)),
    );
    speakReplies(this.deps.speaker, done);
    log.info(
      {
        jobs: jobs.length,
        generated: late.answers.length,
        answeredWithoutModel: early.answers.length - rejected.length,
        failed: done.answers.filter((a) => answerError(a)).length,
        refused: sorted.refused.size,
        inferenceMs: pass.steps.generate ?? 0,
        stepsMs: pass.steps,
      },
      'batch stored',
    );
    return batchOutcomes(jobs, sorted, waiting, marks, done);
  }

  /** Answers that need no model (rejections, templates, status, handlers, knowledge, failures), stored in one write. */
  private async answerEarly(
    pass: BatchPass,
    rejected: readonly Answer[],
    planned: readonly PlannedJob[],
    history: HistoryByConversation,
  ): Promise<StoredAnswers> {
    const answers = [
      ...rejected,
      ...planned.flatMap((p) => this.composer.withoutModel(p, history, pass.startedAt) ?? []),
    ];
    for (const a of answers) if (a.kind === 'canned') this.deps.stream?.token(a.key, pass.attempt, a.text);
    return this.store(pass, 'storeEarly', answers, 0);
  }

  /** The plans that need the model, generated in one call and stored in one write. */
  private async answerWithModel(
    pass: BatchPass,
    planned: readonly PlannedJob[],
    history: HistoryByConversation,
  ): Promise<StoredAnswers> {
    const toGenerate = planned.filter((p) => p.plan.kind === 'generate');
    const prompts = toGenerate.map((p) => this.composer.request(p, history, pass.startedAt));
    pass.lap('prompts');
    const keys = toGenerate.map((p) => p.key);
    const results = await this.generate(
      prompts.map((x) => x.request),
      keys,
      pass.attempt,
    );
    pass.lap('generate');
    const answers = toGenerate.map((p, i): Answer => ({
      kind: 'generated',
      job: p.job,
      key: p.key,
      planned: p,
      passageIds: prompts[i].passageIds,
      result: results[i],
    }));
    return this.store(pass, 'storeGenerated', answers, pass.steps.generate);
  }

  /** The answers' reply documents, stored in one bulk write (storing nothing is no round trip). */
  private async store(pass: BatchPass, step: string, answers: Answer[], inferenceMs: number): Promise<StoredAnswers> {
    const finishedAt = new Date();
    const docs = answers.map((a) =>
      replyDocument(a, this.deps.generator.model, {
        queuedAt: new Date(a.job.timestamp),
        startedAt: pass.startedAt,
        finishedAt,
        inferenceMs,
      }),
    );
    return { answers, docs, stored: await pass.io(step, storeReplies(this.deps, docs)) };
  }

  /**
   * Marks, turns (again those of redelivered jobs, from their marks) and the conversations' places released: every
   * text or voice message of the batch that did not wait is answered now or was by an earlier pass.
   */
  private settle(
    pass: BatchPass,
    sorted: Sorted,
    marked: ReadonlyMap<string, StoredReplyMark>,
    waiting: readonly ParsedJob[],
    { answers, docs, stored }: StoredAnswers,
  ) {
    const waits = new Set(waiting.map((w) => w.key));
    return settleReplies(this.deps, (name, work) => pass.io(name, work), {
      written: answers.map((a, i) => ({
        job: a.job,
        doc: docs[i],
        place: a.kind !== 'rejected' ? a.planned.place : undefined,
      })),
      stored,
      marked,
      turns: (marks) =>
        conversationTurns(
          answers.filter((a) => stored.has(a.key)),
          [...sorted.parsed, ...heardBefore(sorted.voice, marks)].filter((p) => marks.has(p.key) && !stored.has(p.key)),
          marks,
        ),
      released: [...sorted.parsed, ...sorted.voice]
        .filter((p) => !waits.has(p.key))
        .map((p) => ({ messageId: p.key, conversationId: p.message.conversationId })),
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
    return { heard: [], failed: voice.map((v): Answer => ({ kind: 'rejected', job: v.job, key: v.key, error })) };
  }

  private async markProcessing(fresh: readonly ParsedJob[], startedAt: Date): Promise<void> {
    await this.deps.states.markProcessing(
      fresh.map((p) => ({
        _id: p.key,
        tenant: p.message.tenant,
        conversationId: p.message.conversationId,
        userId: p.message.userId,
        status: 'processing',
        queuedAt: new Date(p.job.timestamp),
        startedAt,
        attempts: p.job.attemptsMade,
      })),
    );
  }

  private async plan(fresh: readonly ParsedJob[], history: HistoryByConversation): Promise<PlannedJob[]> {
    const plans = await this.deps.planner.planAll(
      fresh.map((p) => ({
        message: p.message,
        queuedAt: new Date(p.job.timestamp),
        carried: carriedSlots(history.get(p.message.conversationId) ?? []),
      })),
    );
    return fresh.map((p, i) => ({ ...p, plan: plans[i] }));
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
