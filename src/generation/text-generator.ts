import { GenerationError, type AvaError } from '../errors/errors.js';
import type { TextTokenizer } from './text-tokenizer.js';

/** Sampling settings of one request; all optional, greedy by default. */
export interface SamplingOptions {
  /** 0 (default) is greedy decoding; above 0, sampling at that temperature. */
  temperature?: number;
  /** Keep only the k most likely tokens when sampling (0 = off). */
  topK?: number;
  /** Nucleus sampling threshold in (0, 1] (1 = off). */
  topP?: number;
  /** CTRL repetition penalty (1 = off). */
  repetitionPenalty?: number;
  /** Seed of this request's own generator: the same seed gives the same text whatever else is in the batch. */
  seed?: number;
  /** Generation stops at the first of these strings; nothing from it on is returned. */
  stop?: readonly string[];
  /** End-of-text is not generated before this many new tokens (default 0); benchmarks use it for equal lengths. */
  minNewTokens?: number;
}

/** One prompt to continue. */
export interface GenerationRequest extends SamplingOptions {
  /**
   * The prompt's token ids in the generator's tokenizer. With `maxNewTokens` they must fit the window (the prompt
   * encoder sees to it); a request that does not fit fails on its own.
   */
  promptIds: readonly number[];
  /** Most tokens to generate. */
  maxNewTokens: number;
  /** Called with each new piece of text as it is generated (streaming); held back while it may start a stop string. */
  onText?: (delta: string) => void;
}

/** Why a request ended: an end-of-text token or a stop string, its token limit, or a failure of its own. */
export type FinishReason = 'stop' | 'length' | 'error';

/** The continuation of one request. */
export interface GenerationOutput {
  /** `stop` (end-of-text or a stop string) or `length` (`maxNewTokens` reached). */
  finishReason: Exclude<FinishReason, 'error'>;
  /** Generated text, without the prompt and without end-of-text. */
  text: string;
  /** Prompt tokens sent to the model. */
  promptTokens: number;
  /** Tokens generated (end-of-text not counted). */
  generatedTokens: number;
}

/** A request that failed on its own; the others of its call are unaffected. */
export interface GenerationFailure {
  finishReason: Extract<FinishReason, 'error'>;
  /** Why, with a stable code (`ERR_GENERATION`). */
  error: AvaError;
}

/** What one request ends with. */
export type GenerationResult = GenerationOutput | GenerationFailure;

/**
 * What the worker needs from a model: continue a batch of prompts in one call. Implementations: the
 * continuous-batching engine ({@link EngineGenerator}, the default), the transformers.js batched pipeline
 * ({@link PipelineGenerator}, a baseline) and the model-less {@link InstantGenerator} (benchmarks).
 */
export interface TextGenerator {
  /** The model's id and revision, recorded on every reply. */
  readonly model: { readonly id: string; readonly revision: string };
  /** The tokenizer whose ids the generator takes and whose text it returns. */
  readonly tokenizer: TextTokenizer;
  /** Tokens of the model's window (prompt + new tokens). */
  readonly window: number;
  /** How the model computes, for the start-up log: its precision and, for int8, the integer kernel and why. */
  readonly numerics?: Readonly<Record<string, string>>;
  /**
   * Generates every request in one call; result i answers request i. A request that fails gets its own `error`
   * result and is never generated twice; the call rejects only when the generator itself is unusable.
   */
  generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]>;
  /** Resolves when a new request would start generating at once (at once for a generator without such a limit). */
  whenCapacity(): Promise<void>;
  /**
   * Calls `listener` if the generator breaks for good (its scheduling loop failed, not a request): it then fails
   * every request, and the process should exit so that its supervisor starts a fresh one.
   */
  onFatal?(listener: (err: Error) => void): void;
  /** Releases the model. */
  close(): Promise<void>;
}

/** Throws {@link GenerationError} when a request's prompt and new tokens do not fit a window, or it asks for none. */
export function checkFitsWindow(request: GenerationRequest, window: number): void {
  if (
    request.promptIds.length === 0 ||
    request.maxNewTokens < 1 ||
    request.promptIds.length + request.maxNewTokens > window
  ) {
    throw new GenerationError(
      `a prompt of ${request.promptIds.length} tokens with ${request.maxNewTokens} new tokens does not fit the window of ${window} tokens`,
    );
  }
}
