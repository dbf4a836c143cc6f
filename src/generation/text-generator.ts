/** One prompt to continue. */
export interface GenerationRequest {
  /** Full prompt text; cut from the left when it does not fit the model's window. */
  prompt: string;
  /** Most tokens to generate. */
  maxNewTokens: number;
}

/** The continuation of one request. */
export interface GenerationOutput {
  /** Generated text, without the prompt and without end-of-text. */
  text: string;
  /** Prompt tokens actually sent to the model (after truncation). */
  promptTokens: number;
  /** Tokens generated (end-of-text not counted). */
  generatedTokens: number;
}

/**
 * What the worker needs from a model: continue a batch of prompts in one call. Implementations: the transformers.js
 * batched pipeline ({@link PipelineGenerator}) and, later, the continuous-batching engine.
 */
export interface TextGenerator {
  /** The model's id and revision, recorded on every reply. */
  readonly model: { readonly id: string; readonly revision: string };
  /** Generates every request in one model call; output i answers request i. Greedy, so deterministic. */
  generate(requests: readonly GenerationRequest[]): Promise<GenerationOutput[]>;
  /** Releases the model. */
  close(): Promise<void>;
}
