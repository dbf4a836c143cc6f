import path from 'node:path';
import { GenerationError, ModelLoadError } from '../errors/errors.js';
import { DecoderEngine } from '../inference/decoder-engine.js';
import type { ExecutionProvider } from '../inference/onnx-session.js';
import type { WeightPrecision } from '../models/gpt2-graph.js';
import type { Int8KernelSetting } from '../inference/int8-kernel.js';
import { ContinuousBatcher } from '../scheduler/continuous-batcher.js';
import { GenerationSequence } from './generation-sequence.js';
import {
  checkFitsWindow,
  type GenerationOutput,
  type GenerationRequest,
  type GenerationResult,
  type TextGenerator,
} from './text-generator.js';
import { TextTokenizer } from './text-tokenizer.js';

/** Options of the continuous-batching generator. */
export interface EngineGeneratorOptions {
  id: string;
  dir: string;
  /** The model's tokenizer when already loaded; absent: loaded from `dir`. */
  tokenizer?: TextTokenizer;
  executionProvider?: ExecutionProvider;
  intraOpThreads?: number;
  /** Most sequences decoded together. */
  maxBatchSize: number;
  /** Most cached tokens over all running sequences. */
  maxCachedTokens: number;
  /** Writable folder for the converted graph; absent: the default cache folder. */
  cacheDir?: string;
  /** Precision of the linear layers: float32 (default) or int8 weights with per-token int8 activations. */
  precision?: WeightPrecision;
  /** The int8 engine's integer kernel: `auto` (default, chosen from the CPU) or a formulation. */
  int8Kernel?: Int8KernelSetting;
  /** Tokens per prefill chunk (the engine's default when absent). */
  prefillChunk?: number;
}

/**
 * The continuous-batching engine behind the {@link TextGenerator} interface: requests join the running batch at the
 * next decoding step and leave it the step they finish, so none waits for the slowest of a batch. Supports sampling
 * settings, stop strings and streaming per request.
 */
export class EngineGenerator implements TextGenerator {
  private constructor(
    readonly model: { readonly id: string; readonly revision: string },
    readonly tokenizer: TextTokenizer,
    private readonly engine: DecoderEngine,
    /** The scheduler, exposed for back-pressure and statistics. */
    readonly batcher: ContinuousBatcher,
  ) {}

  /** Loads the engine (converting the graph on first use). */
  static async load(opts: EngineGeneratorOptions): Promise<EngineGenerator> {
    const dir = path.resolve(opts.dir);
    try {
      const tokenizer = opts.tokenizer ?? (await TextTokenizer.load(dir));
      const engine = await DecoderEngine.load(dir, {
        executionProvider: opts.executionProvider,
        intraOpThreads: opts.intraOpThreads,
        cacheDir: opts.cacheDir,
        maxCachedTokens: opts.maxCachedTokens,
        precision: opts.precision,
        int8Kernel: opts.int8Kernel,
        prefillChunk: opts.prefillChunk,
      });
      const batcher = new ContinuousBatcher(engine, {
        maxBatchSize: opts.maxBatchSize,
        maxCachedTokens: opts.maxCachedTokens,
      });
      return new EngineGenerator({ id: opts.id, revision: engine.revision }, tokenizer, engine, batcher);
    } catch (cause) {
      if (cause instanceof ModelLoadError) throw cause;
      throw new ModelLoadError(
        `loading model ${opts.id} from ${dir} into the engine failed: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /** Model window and cache statistics. */
  get stats() {
    return {
      window: this.engine.shape.window,
      cache: this.engine.cacheStats,
      load: this.batcher.load,
      steps: this.batcher.stats,
    };
  }

  get window(): number {
    return this.engine.shape.window;
  }

  get numerics(): Readonly<Record<string, string>> {
    const n = this.engine.numerics;
    return n.precision === 'int8'
      ? { precision: n.precision, int8Kernel: n.kernel, cpu: n.cpu, reason: n.reason }
      : { precision: n.precision };
  }

  /** Generates one request, streaming through `request.onText`; rejects with {@link GenerationError}. */
  async stream(request: GenerationRequest): Promise<GenerationOutput> {
    try {
      return await this.run(request);
    } catch (cause) {
      throw cause instanceof GenerationError
        ? cause
        : new GenerationError(`generation failed: ${(cause as Error).message}`, { cause });
    }
  }

  private async run(request: GenerationRequest): Promise<GenerationOutput> {
    checkFitsWindow(request, this.engine.shape.window);
    const { promptIds, ...options } = request;
    const seq = new GenerationSequence(promptIds, {
      ...options,
      eosTokenIds: [this.tokenizer.eosTokenId],
      decode: (tokens) => this.tokenizer.decode(tokens),
    });
    this.batcher.submit(seq);
    return seq.result;
  }

  /**
   * All requests join the running batch at once; each resolves as soon as it finishes. A request that fails (in its
   * sampling, its stopping or its streaming) leaves the batch alone and the others run on.
   */
  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    return Promise.all(
      requests.map((r) =>
        this.stream(r).catch((error: GenerationError) => ({ finishReason: 'error' as const, error })),
      ),
    );
  }

  whenCapacity(): Promise<void> {
    return this.batcher.whenCapacity();
  }

  onFatal(listener: (err: Error) => void): void {
    this.batcher.onFatal(listener);
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}
