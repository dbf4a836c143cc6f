import type { QueuedJob } from '../queue/batch-collector.js';
import { parseMessage, type Message, type VoiceMessage } from '../contract/message-contract.js';
import type { ReplyDocument, TranscriptInfo } from '../storage/reply-document.js';
import type { ReplyPlan } from '../conversation/reply-planner.js';
import { AvaError, ContractError, JobIdError, errorMessageOf } from '../errors/errors.js';
import type { GenerationOutput, GenerationResult } from '../generation/text-generator.js';
import type { StoredReplyMark } from '../queue/stored-reply-marks.js';
import { replyKeyOf } from './reply-key.js';
import { scopedMessage } from '../contract/scoped-key.js';
import { messageDigest } from '../contract/message-digest.js';

/** What happened to one job of a batch; decides how it is acknowledged. */
export type JobOutcome =
  | { kind: 'replied'; messageId: string }
  | { kind: 'failed'; messageId: string; error: AvaError }
  | { kind: 'already-stored'; messageId: string }
  /** An earlier message of its conversation is not answered yet: the job is parked until that one is. */
  | { kind: 'deferred'; messageId: string; conversationId: string }
  /** No reply can be keyed safely for the job (its data names another message, or its id is unusable). */
  | { kind: 'refused'; jobId: string; error: AvaError };

/**
 * A job whose data passed the contract with its text, under its reply key (the job id; the producer makes it the
 * scoped messageId): written, or a voice message after transcription (`transcript`). Its message's messageId and
 * conversationId are scoped keys ({@link scopedMessage}).
 */
export interface ParsedJob {
  job: QueuedJob;
  key: string;
  /** The digest of its content as sent (`messageDigest`), stored with its reply. */
  digest: string;
  message: Message;
  transcript?: TranscriptInfo;
  /** Its place in its conversation (µs), from the conversation order; absent with the order off or no place. */
  place?: number;
}

/** A voice message that passed the contract, before transcription. */
export interface VoiceJob {
  job: QueuedJob;
  key: string;
  digest: string;
  message: VoiceMessage;
}

/** A job whose data broke the contract: it is answered with a `failed` reply under its own key. */
export interface MalformedJob {
  job: QueuedJob;
  key: string;
  error: AvaError;
}

/** A parsed job and how it will be answered. */
export interface PlannedJob extends ParsedJob {
  plan: ReplyPlan;
}

/** The job an answer is for, under its reply key. */
interface Answering {
  job: QueuedJob;
  key: string;
}

/**
 * What a job is answered with, by the stage that answered it:
 * - `rejected`: before planning (its data broke the contract, or its audio could not be heard);
 * - `plan-failed`: by planning (unreadable text, a failing handler, a conversation that is not the user's);
 * - `canned`: by planning, without the model (a template, a state, a handler's or a knowledge reply);
 * - `generated`: by the model, with its own result (a failure of one request fails only its message).
 */
export type Answer =
  | (Answering & { kind: 'rejected'; error: AvaError })
  | (Answering & { kind: 'plan-failed'; planned: PlannedJob; error: AvaError })
  | (Answering & {
      kind: 'canned';
      planned: PlannedJob;
      text: string;
      finishReason: GenerationOutput['finishReason'];
      usage: NonNullable<ReplyDocument['usage']>;
      passageIds: readonly string[];
    })
  | (Answering & { kind: 'generated'; planned: PlannedJob; passageIds: readonly string[]; result: GenerationResult });

/** The error an answer fails its message with; undefined for a reply. */
export function answerError(a: Answer): AvaError | undefined {
  if (a.kind === 'rejected' || a.kind === 'plan-failed') return a.error;
  if (a.kind === 'generated' && a.result.finishReason === 'error') return a.result.error;
  return undefined;
}

/** The reply's text (as generated or composed, before it is made storable); undefined for a failure. */
export function answerText(a: Answer): string | undefined {
  if (a.kind === 'canned') return a.text;
  if (a.kind === 'generated' && a.result.finishReason !== 'error') return a.result.text;
  return undefined;
}

/** The jobs of a batch sorted by what happens to them first. */
export interface Sorted {
  refused: Map<QueuedJob, JobOutcome>;
  parsed: ParsedJob[];
  voice: VoiceJob[];
  malformed: MalformedJob[];
}

/** Sorts jobs by their reply key (see {@link replyKeyOf}), whether their data passes the contract, and text or voice. */
export function sortJobs(jobs: readonly QueuedJob[]): Sorted {
  const sorted: Sorted = { refused: new Map(), parsed: [], voice: [], malformed: [] };
  for (const job of jobs) {
    const key = replyKeyOf(job.id, job.data);
    if (key instanceof JobIdError) {
      sorted.refused.set(job, { kind: 'refused', jobId: job.id, error: key });
      continue;
    }
    try {
      const sent = parseMessage(job.data);
      const digest = messageDigest(sent);
      // From here on its messageId and conversationId are its tenant's keys.
      const message = scopedMessage(sent);
      if (message.text !== undefined)
        sorted.parsed.push({ job, key, digest, message: { ...message, text: message.text } });
      else if (message.audio) sorted.voice.push({ job, key, digest, message: { ...message, audio: message.audio } });
    } catch (err) {
      sorted.malformed.push({
        job,
        key,
        error: err instanceof AvaError ? err : new ContractError([{ path: '(root)', message: errorMessageOf(err) }]),
      });
    }
  }
  return sorted;
}

/** What a job's mark says of its stored reply, and of its message's place in its conversation. */
export function markOf(d: ReplyDocument, place?: number): StoredReplyMark {
  return {
    ...(d.status === 'replied' ? { status: d.status, text: d.text } : { status: d.status }),
    ...(d.intent ? { intent: d.intent } : {}),
    ...(d.transcript ? { heard: d.transcript.text } : {}),
    ...(place !== undefined ? { place } : {}),
  };
}

/** Answers stored by one write: the answers, their documents, and the keys newly stored. */
export interface StoredAnswers {
  answers: Answer[];
  docs: ReplyDocument[];
  stored: Set<string>;
}
