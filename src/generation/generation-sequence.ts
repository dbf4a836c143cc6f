import { randomInt } from 'node:crypto';
import type { ScheduledSequence } from '../scheduler/continuous-batcher.js';
import {
  MinNewTokensProcessor,
  RepetitionPenaltyProcessor,
  TemperatureWarper,
  TopKWarper,
  TopPWarper,
  type LogitsProcessor,
} from './logits-processors.js';
import { GreedySampler, SeededSampler, type Sampler } from './samplers.js';
import {
  EosTokenCriterion,
  MaxNewTokensCriterion,
  StopStringCriterion,
  type StoppingCriterion,
} from './stopping-criteria.js';
import type { GenerationOutput, SamplingOptions } from './text-generator.js';

/** What a sequence needs besides its prompt. */
export interface SequenceOptions extends SamplingOptions {
  maxNewTokens: number;
  eosTokenIds: readonly number[];
  /** Token ids → text. */
  decode: (ids: readonly number[]) => string;
  onText?: (delta: string) => void;
}

/**
 * One request being generated: composes logits processors, a sampler and stopping criteria, turns the scheduler's
 * scores into tokens, streams text and resolves `result` when finished.
 */
export class GenerationSequence implements ScheduledSequence {
  readonly tokenBudget: number;
  /** Resolves with the final text, or rejects with the step's error. */
  readonly result: Promise<GenerationOutput>;
  private readonly processors: LogitsProcessor[] = [];
  private readonly sampler: Sampler;
  private readonly criteria: StoppingCriterion[];
  private readonly stop: StopStringCriterion;
  private readonly eos: EosTokenCriterion;
  private readonly generated: number[] = [];
  private emitted = 0;
  private resolve!: (out: GenerationOutput) => void;
  private reject!: (err: unknown) => void;

  constructor(
    readonly promptTokens: readonly number[],
    private readonly opts: SequenceOptions,
  ) {
    this.tokenBudget = promptTokens.length + opts.maxNewTokens;
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (opts.minNewTokens)
      this.processors.push(new MinNewTokensProcessor(promptTokens.length, opts.minNewTokens, opts.eosTokenIds));
    if (opts.repetitionPenalty !== undefined && opts.repetitionPenalty !== 1)
      this.processors.push(new RepetitionPenaltyProcessor(opts.repetitionPenalty));
    const temperature = opts.temperature ?? 0;
    if (temperature > 0) {
      if (temperature !== 1) this.processors.push(new TemperatureWarper(temperature));
      if (opts.topK) this.processors.push(new TopKWarper(opts.topK));
      if (opts.topP !== undefined && opts.topP < 1) this.processors.push(new TopPWarper(opts.topP));
      this.sampler = new SeededSampler(opts.seed ?? randomInt(0, 2 ** 31));
    } else {
      this.sampler = new GreedySampler();
    }
    this.eos = new EosTokenCriterion(opts.eosTokenIds);
    this.stop = new StopStringCriterion(opts.stop ?? []);
    this.criteria = [new MaxNewTokensCriterion(opts.maxNewTokens)];
  }

  next(scores: Float32Array): number | null {
    const context = this.processors.length > 0 ? [...this.promptTokens, ...this.generated] : [];
    for (const p of this.processors) p.apply(scores, context);
    const token = this.sampler.sample(scores);
    if (this.eos.isDone({ tokens: [token], text: '' })) return this.finish(this.opts.decode(this.generated), 'stop');
    this.generated.push(token);
    const text = this.opts.decode(this.generated);
    const state = { tokens: this.generated, text };
    if (this.stop.isDone(state)) return this.finish(this.stop.cut(text), 'stop');
    if (this.criteria.some((c) => c.isDone(state))) return this.finish(text, 'length');
    this.stream(text, this.stop.pendingSuffix(text));
    return token;
  }

  fail(err: unknown): void {
    this.reject(err);
  }

  private finish(text: string, finishReason: GenerationOutput['finishReason']): null {
    this.stream(text, 0, true);
    this.resolve({
      text,
      promptTokens: this.promptTokens.length,
      generatedTokens: this.generated.length,
      finishReason,
    });
    return null;
  }

  /** Emits new text, holding back a possible stop-string prefix and an incomplete multi-byte character. */
  private stream(text: string, hold: number, final = false): void {
    if (!this.opts.onText) return;
    let end = text.length - hold;
    if (!final && text.endsWith('\uFFFD')) end = Math.min(end, text.length - 1);
    // Never split a surrogate pair between two pieces: each piece must be well-formed text on its own.
    if (end > 0 && end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1])) end--;
    if (end > this.emitted) {
      this.opts.onText(text.slice(this.emitted, end));
      this.emitted = end;
    }
  }
}
