import type { QueuedJob } from '../queue/batch-collector.js';
import { parseMessage, type Message, type VoiceMessage } from '../contract/message-contract.js';
import type { ReplyDocument, TranscriptInfo } from '../storage/reply-document.js';
import type { ReplyPlan } from '../conversation/reply-planner.js';
import { AvaError, ContractError, JobIdError, errorMessageOf } from '../errors/errors.js';
import type { GenerationOutput } from '../generation/text-generator.js';
import type { StoredReplyMark } from '../queue/stored-reply-marks.js';
import { replyKeyOf } from './reply-key.js';

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
 * messageId): written, or a voice message after transcription (`transcript`).
 */
export interface ParsedJob {
  job: QueuedJob;
  key: string;
  message: Message;
  transcript?: TranscriptInfo;
  /** Its place in its conversation (µs), from the conversation order; absent with the order off or no place. */
  place?: number;
}

/** A voice message that passed the contract, before transcription. */
export interface VoiceJob {
  job: QueuedJob;
  key: string;
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

/** What a job is answered with: a text and how it ended, or an error. */
export type Answer = {
  job: QueuedJob;
  key: string;
  message?: Message;
  transcript?: TranscriptInfo;
  plan?: ReplyPlan;
  passageIds?: readonly string[];
  place?: number;
  usage?: ReplyDocument['usage'];
} & ({ output: GenerationOutput; error?: undefined } | { error: AvaError; output?: undefined });

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
      const message = parseMessage(job.data);
      if (message.text !== undefined) sorted.parsed.push({ job, key, message: { ...message, text: message.text } });
      else if (message.audio) sorted.voice.push({ job, key, message: { ...message, audio: message.audio } });
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
    status: d.status,
    ...(d.text !== undefined ? { text: d.text } : {}),
    ...(d.intent ? { intent: d.intent } : {}),
    ...(d.transcript ? { heard: d.transcript.text } : {}),
    ...(place !== undefined ? { place } : {}),
  };
}
