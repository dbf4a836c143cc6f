/**
 * Error classes with stable codes. Codes are part of the public contract: they are stored on `failed`
 * replies and used as metric labels, so they never change meaning once released.
 */

/** Every stable error code AVA emits. */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_CONTRACT'
  | 'ERR_CONVERSATION_OWNER'
  | 'ERR_IDEMPOTENCY_CONFLICT'
  | 'ERR_QUOTA'
  | 'ERR_JOB_ID'
  | 'ERR_RETRIES_EXHAUSTED'
  | 'ERR_STALLED'
  | 'ERR_MODEL_LOAD'
  | 'ERR_MODEL_FORGE'
  | 'ERR_MODEL_RESOLVE'
  | 'ERR_GENERATION'
  | 'ERR_INTENTS_FILE'
  | 'ERR_KNOWLEDGE_FILE'
  | 'ERR_HANDLER'
  | 'ERR_STORAGE'
  | 'ERR_SERVICE_UNAVAILABLE'
  | 'ERR_SPEECH'
  | AudioErrorCode
  | 'ERR_RECOGNIZER'
  | 'ERR_INTERNAL';

/**
 * Whether trying again can help: `transient` (a dependency was away or slow; a retry may succeed) or `permanent`
 * (the same input fails the same way).
 */
export type ErrorKind = 'transient' | 'permanent';

/** The codes of errors that pass: Redis or the database away or slow. */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['ERR_STORAGE', 'ERR_SERVICE_UNAVAILABLE']);

/** Base class: an error with a stable `code` and an optional hint telling the operator how to fix it. */
export class AvaError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** What the operator can do about it, shown after the message. */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /** Whether trying again can help; decided by the code. */
  get kind(): ErrorKind {
    return TRANSIENT_CODES.has(this.code) ? 'transient' : 'permanent';
  }

  /** One line for a terminal: code, message and hint. */
  toLine(): string {
    return `${this.code}: ${this.message}${this.hint ? ` (hint: ${this.hint})` : ''}`;
  }
}

/** Invalid or missing configuration; raised at start-up only. */
export class ConfigError extends AvaError {
  constructor(message: string, hint?: string) {
    super('ERR_CONFIG', message, { hint });
  }
}

/** A message that breaks the contract. Never retried. */
export class ContractError extends AvaError {
  /** One entry per offending field: dotted path and reason. */
  readonly issues: ReadonlyArray<{ path: string; message: string }>;

  constructor(issues: ReadonlyArray<{ path: string; message: string }>) {
    super('ERR_CONTRACT', issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; '));
    this.issues = issues;
  }
}

/** The model directory or graph could not be loaded. */
export class ModelLoadError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_MODEL_LOAD', message, options);
  }
}

/** Forging a model failed (bad preset, unwritable folder, missing tokenizer source). */
export class ModelForgeError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_MODEL_FORGE', message, options);
  }
}

/** A model id could not be resolved to a local directory. */
export class ModelResolveError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_MODEL_RESOLVE', message, options);
  }
}

/** Generation failed for one request or a batch. */
export class GenerationError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_GENERATION', message, options);
  }
}

/**
 * A raw job whose reply cannot be keyed safely: its data names another messageId, or its job id is not a usable
 * id. No reply is stored for it; the job fails with this reason, visible in BullMQ's failed set. Never retried.
 */
export class JobIdError extends AvaError {
  constructor(message: string) {
    super('ERR_JOB_ID', message, {
      hint: 'enqueue through the producer, or add raw jobs with jobId equal to data.messageId',
    });
  }
}

/**
 * A job that ended in BullMQ's failed set without a reply: its attempts ran out (`ERR_RETRIES_EXHAUSTED`, a database
 * outage longer than the retry budget) or it stalled more than the limit (`ERR_STALLED`, its workers kept dying).
 */
export class TerminalJobError extends AvaError {
  constructor(code: 'ERR_RETRIES_EXHAUSTED' | 'ERR_STALLED', message: string) {
    super(code, message);
  }
}

/** Where in a file something is wrong: file, 1-based line and the reason. */
export interface FileProblem {
  file: string;
  line: number;
  reason: string;
}

/** An intents file that cannot be used; raised at load, so a worker never starts half-configured. */
export class IntentsFileError extends AvaError {
  constructor(readonly problem: FileProblem) {
    super('ERR_INTENTS_FILE', `${problem.file}:${problem.line}: ${problem.reason}`, {
      hint: 'see config/intents.yaml and docs/intents.md for the format',
    });
  }
}

/** A knowledge file that is not valid JSON lines or Markdown; nothing from it is imported. */
export class KnowledgeFileError extends AvaError {
  constructor(readonly problem: FileProblem) {
    super('ERR_KNOWLEDGE_FILE', `${problem.file}:${problem.line}: ${problem.reason}`, {
      hint: 'see docs/knowledge.md for the JSON lines and Markdown formats',
    });
  }
}

/** An operator's custom intent handler threw, timed out or returned something unusable; fails its message only. */
export class HandlerError extends AvaError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_HANDLER', message, options);
  }
}

/**
 * Messages for a conversation that another userId opened: refused as a whole before anything is queued, naming each
 * message by its index. A conversation's history is only ever read and written by its owner's messages.
 */
export class ConversationOwnerError extends AvaError {
  constructor(readonly issues: ReadonlyArray<{ path: string; message: string }>) {
    super('ERR_CONVERSATION_OWNER', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
      hint: 'use a conversationId of your own user, or the userId that opened the conversation',
    });
  }
}

/**
 * Messages whose messageId the tenant already used for a message with other content: refused as a whole before
 * anything is queued, naming each by its index (the same messageId with the same content is the same message).
 */
export class IdempotencyConflictError extends AvaError {
  constructor(readonly issues: ReadonlyArray<{ path: string; message: string }>) {
    super('ERR_IDEMPOTENCY_CONFLICT', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
      hint: 'send each new message with a new messageId; resend a message only as it was first sent',
    });
  }
}

/**
 * A tenant's quota or a size bound that a request would pass, refused before any work is done: `rate` (per minute,
 * 429 with the seconds to wait), `size` (one request too large, 413) or `backlog` (too many unanswered, 429).
 */
export class QuotaError extends AvaError {
  constructor(
    /** The limit, by its setting's name (`AVA_TENANT_MESSAGES_PER_MINUTE`, …). */
    readonly limit: string,
    readonly bound: 'rate' | 'size' | 'backlog',
    message: string,
    /** For `rate`: seconds until the window turns. */
    readonly retryAfterSeconds?: number,
  ) {
    super('ERR_QUOTA', `${message} (${limit})`);
  }
}

/** The database refused or could not be reached; transient, so retried. */
export class StorageError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_STORAGE', message, options);
  }
}

/** A required service (Redis, database) is unreachable at start-up. */
export class ServiceUnavailableError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_SERVICE_UNAVAILABLE', message, options);
  }
}

/** Stable code of any thrown value; unknown errors map to `ERR_INTERNAL`. */
export function errorCodeOf(err: unknown): ErrorCode {
  return err instanceof AvaError ? err.code : 'ERR_INTERNAL';
}

/**
 * Whether trying again can help, for any thrown value. An error without a kind of its own (not an AvaError) is of
 * unknown cause and counts as transient: the job's attempts bound how often it is tried.
 */
export function errorKindOf(err: unknown): ErrorKind {
  return err instanceof AvaError ? err.kind : 'transient';
}

/** Message of any thrown value, never empty. */
export function errorMessageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Speech could not be synthesised (the synthesiser is missing, failed or ran too long). */
export class SpeechError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_SPEECH', message, options);
  }
}

/** Why a voice message's audio cannot be heard; each is stored on its `failed` reply (or answered 4xx by the API). */
export type AudioErrorCode =
  /** Not audio in a format AVA reads, or a file whose header claims a format its bytes are not. */
  | 'ERR_AUDIO_FORMAT'
  /** A WAV whose header promises more sound than the file holds. */
  | 'ERR_AUDIO_TRUNCATED'
  /** Longer than AVA_AUDIO_MAX_SECONDS. */
  | 'ERR_AUDIO_TOO_LONG'
  /** Larger than AVA_AUDIO_MAX_BYTES. */
  | 'ERR_AUDIO_TOO_LARGE'
  /** A sample rate outside 8–192 kHz, where speech cannot be recognised or the header is nonsense. */
  | 'ERR_AUDIO_SAMPLE_RATE'
  /** Nothing audible: silence, or sound too faint to hold words. */
  | 'ERR_AUDIO_SILENT'
  /** Audible, but the recogniser heard no words in it. */
  | 'ERR_AUDIO_NO_SPEECH'
  /** No recogniser of this worker knows the message's language. */
  | 'ERR_AUDIO_LANGUAGE'
  /** The stored audio a message refers to is gone (past its retention, or never stored). */
  | 'ERR_AUDIO_NOT_FOUND'
  /** The upload was made for another message. */
  | 'ERR_AUDIO_NOT_YOURS';

/** A voice message's audio that cannot be turned into text; never retried, since the same bytes fail the same way. */
export class AudioError extends AvaError {
  constructor(code: AudioErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** A speech recogniser that cannot be loaded or failed while decoding (an operator's problem, not the audio's). */
export class RecognizerError extends AvaError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('ERR_RECOGNIZER', message, options);
  }
}
