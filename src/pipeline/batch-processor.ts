import type { Job } from 'bullmq';
import { parseMessage, type Message } from '../contract/message-contract.js';
import type { ConversationTurn, ReplyDocument } from '../contract/reply-document.js';
import { buildPrompt } from '../conversation/prompt-builder.js';
import { AvaError, ContractError, GenerationError, errorCodeOf, errorMessageOf } from '../errors/errors.js';
import type { GenerationOutput, TextGenerator } from '../generation/text-generator.js';
import type { Logger } from '../logging/logger.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import type { TokenPublisher } from '../queue/token-stream.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';

/** What happened to one job of a batch; decides how it is acknowledged. */
export type JobOutcome =
  | { kind: 'replied'; messageId: string }
  | { kind: 'failed'; messageId: string; error: AvaError }
  | { kind: 'already-stored'; messageId: string };

/** Settings of the processor. */
export interface BatchProcessorOptions {
  maxNewTokens: number;
}

interface Parsed {
  job: Job;
  messageId: string;
  message?: Message;
  output?: GenerationOutput;
  error?: AvaError;
}

/**
 * handle_messages for one batch: parse every job, generate the valid new ones in ONE model call, store every reply
 * (replied or failed) in ONE bulk write, append the turns to their conversations, and report each job's outcome.
 * Storage errors propagate (the caller retries the whole batch); a bad message or a generation failure only ever
 * fails its own message.
 */
export class BatchProcessor {
  constructor(
    private readonly generator: TextGenerator,
    private readonly replies: ReplyRepository,
    private readonly conversations: ConversationRepository,
    private readonly opts: BatchProcessorOptions,
    private readonly stream?: TokenPublisher,
    private readonly metrics?: WorkerMetrics,
  ) {}

  /** Processes one batch. Throws only for storage failures, which are transient. */
  async process(jobs: readonly Job[], log: Logger): Promise<JobOutcome[]> {
    const startedAt = new Date();
    const parsed = jobs.map((job) => parseJob(job));
    const existing = await this.replies.existingIds(parsed.map((p) => p.messageId));
    const seen = new Set<string>();
    const fresh: Parsed[] = [];
    const outcomes = new Map<Parsed, JobOutcome>();
    for (const p of parsed) {
      // A re-delivered job (its reply is stored) or a second job carrying the same messageId in this batch.
      if (existing.has(p.messageId) || seen.has(p.messageId)) outcomes.set(p, { kind: 'already-stored', messageId: p.messageId });
      else fresh.push(p);
      seen.add(p.messageId);
    }

    const valid = fresh.filter((p) => p.message);
    const history = await this.conversations.recentTurns(valid.map((p) => p.message!.conversationId));
    const prompts = valid.map((p) => buildPrompt(history.get(p.message!.conversationId) ?? [], p.message!.text));
    const t0 = performance.now();
    const outputs = await this.generateIsolated(prompts, valid.map((p) => p.messageId), log);
    const inferenceMs = Math.round(performance.now() - t0);
    const finishedAt = new Date();
    valid.forEach((p, i) => {
      const out = outputs[i];
      if (out instanceof AvaError) p.error = out;
      else p.output = out;
    });

    const docs: ReplyDocument[] = fresh.map((p) => {
      const conversationId = p.message?.conversationId ?? stringField(p.job.data, 'conversationId');
      const userId = p.message?.userId ?? stringField(p.job.data, 'userId');
      return {
        _id: p.messageId,
        ...(conversationId ? { conversationId } : {}),
        ...(userId ? { userId } : {}),
        ...(p.output ? { status: 'replied', text: p.output.text } : { status: 'failed', error: { code: errorCodeOf(p.error), message: errorMessageOf(p.error) } }),
        model: this.generator.model,
        tokens: { prompt: p.output?.promptTokens ?? 0, generated: p.output?.generatedTokens ?? 0 },
        timings: { queuedAt: new Date(p.job.timestamp), startedAt, finishedAt, inferenceMs },
        createdAt: finishedAt,
      };
    });
    const stored = await this.replies.storeAll(docs);
    for (const d of docs) this.stream?.publish(d._id, { type: 'done' });
    this.metrics?.recordBatch(jobs.length, inferenceMs, docs.filter((d) => stored.has(d._id)));
    await this.appendTurns(valid, stored);

    for (const p of fresh) {
      outcomes.set(p, p.error ? { kind: 'failed', messageId: p.messageId, error: p.error } : { kind: 'replied', messageId: p.messageId });
    }
    const failed = fresh.filter((p) => p.error).length;
    log.info({ jobs: jobs.length, generated: valid.length, failed, inferenceMs }, 'batch stored');
    return parsed.map((p) => outcomes.get(p)!);
  }

  /**
   * One model call for the whole batch. If it throws, each request is retried alone so that one bad request fails
   * only itself and the rest of the batch is still answered.
   */
  private async generateIsolated(prompts: string[], messageIds: string[], log: Logger): Promise<Array<GenerationOutput | AvaError>> {
    if (prompts.length === 0) return [];
    const requests = prompts.map((prompt, i) => ({
      prompt,
      maxNewTokens: this.opts.maxNewTokens,
      onText: this.stream && ((text: string) => this.stream!.publish(messageIds[i], { type: 'token', text })),
    }));
    try {
      return await this.generator.generate(requests);
    } catch (err) {
      log.warn({ err, size: prompts.length }, 'batched generation failed; retrying each message alone');
      const outs: Array<GenerationOutput | AvaError> = [];
      for (const r of requests) {
        try {
          outs.push((await this.generator.generate([r]))[0]);
        } catch (one) {
          outs.push(one instanceof AvaError ? one : new GenerationError(errorMessageOf(one), { cause: one }));
        }
      }
      return outs;
    }
  }

  /** Appends the newly stored replies' turns, grouped per conversation and in batch order. */
  private async appendTurns(valid: Parsed[], stored: Set<string>): Promise<void> {
    const byConversation = new Map<string, { userId: string; turns: ConversationTurn[] }>();
    for (const p of valid) {
      if (!p.output || !stored.has(p.messageId)) continue;
      const m = p.message!;
      const entry = byConversation.get(m.conversationId) ?? { userId: m.userId, turns: [] };
      // Enqueue time orders the turns as the user sent them, even within one batch.
      entry.turns.push({ messageId: m.messageId, user: m.text, assistant: p.output.text, at: new Date(p.job.timestamp) });
      byConversation.set(m.conversationId, entry);
    }
    await this.conversations.appendMany([...byConversation].map(([conversationId, { userId, turns }]) => ({ conversationId, userId, turns })));
  }
}

const JOB_ID_SAFE = /^[A-Za-z0-9_.:-]{1,128}$/;

function parseJob(job: Job): Parsed {
  try {
    const message = parseMessage(job.data);
    return { job, messageId: message.messageId, message };
  } catch (err) {
    const error = err instanceof AvaError ? err : new ContractError([{ path: '(root)', message: errorMessageOf(err) }]);
    // The reply is keyed by the job's messageId when it has a usable one, else by the job id, so a malformed job
    // still gets exactly one stored `failed` reply.
    const id = stringField(job.data, 'messageId');
    return { job, messageId: id ?? `job-${JOB_ID_SAFE.test(String(job.id)) ? job.id : 'invalid'}`, error };
  }
}

function stringField(data: unknown, key: string): string | null {
  const v = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' && JOB_ID_SAFE.test(v) ? v : null;
}
