import path from 'node:path';
import { AutoModelForCausalLM, Tensor, type PreTrainedModel } from '@huggingface/transformers';
import { offlineTransformers } from '../models/transformers-env.js';
import { GenerationError, ModelLoadError } from '../errors/errors.js';
import { modelRevision } from '../models/model-revision.js';
import {
  checkFitsWindow,
  type GenerationOutput,
  type GenerationRequest,
  type GenerationResult,
  type TextGenerator,
} from './text-generator.js';
import { TextTokenizer } from './text-tokenizer.js';

/** Options of the transformers.js generator. */
export interface PipelineGeneratorOptions {
  /** Model id recorded on replies. */
  id: string;
  /** Resolved model directory. */
  dir: string;
  /** The model's tokenizer when already loaded; absent: loaded from `dir`. */
  tokenizer?: TextTokenizer;
  /** ONNX Runtime intra-op threads; 0 lets the runtime choose. */
  intraOpThreads?: number;
}

/**
 * Batched greedy generation with transformers.js: every batch is left-padded and continued in ONE `model.generate`
 * call. This is the baseline
 * the continuous-batching engine is measured against; it ignores sampling settings and stop strings.
 */
export class PipelineGenerator implements TextGenerator {
  private constructor(
    readonly model: { readonly id: string; readonly revision: string },
    readonly tokenizer: TextTokenizer,
    private readonly lm: PreTrainedModel,
    /** The model's window. */
    readonly window: number,
  ) {}

  /** Loads the model from a local directory (never from a hub). */
  static async load(opts: PipelineGeneratorOptions): Promise<PipelineGenerator> {
    // Serving never goes online: a model that is not on disk is an error, not a download.
    offlineTransformers();
    const dir = path.resolve(opts.dir);
    try {
      const tokenizer = opts.tokenizer ?? (await TextTokenizer.load(dir));
      const lm = await AutoModelForCausalLM.from_pretrained(dir, {
        dtype: 'fp32',
        local_files_only: true,
        session_options: opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {},
      });
      const revision = await modelRevision(dir);
      return new PipelineGenerator({ id: opts.id, revision }, tokenizer, lm, tokenizer.window);
    } catch (cause) {
      throw new ModelLoadError(`loading model ${opts.id} from ${opts.dir} failed: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  /**
   * One `model.generate` for the batch. The call fails or succeeds as a whole, so when it fails for a batch of more
   * than one, each request is run alone to find the one at fault (this baseline generator's only way to isolate).
   */
  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    if (requests.length === 0) return [];
    try {
      return await this.generateBatch(requests);
    } catch (err) {
      const error = err instanceof GenerationError ? err : new GenerationError((err as Error).message, { cause: err });
      if (requests.length === 1) return [{ finishReason: 'error', error }];
      const results: GenerationResult[] = [];
      for (const r of requests) results.push(...(await this.generate([r])));
      return results;
    }
  }

  private async generateBatch(requests: readonly GenerationRequest[]): Promise<GenerationOutput[]> {
    for (const r of requests) checkFitsWindow(r, this.window);
    const maxNew = requests.map((r) => r.maxNewTokens);
    const prompts = requests.map((r) => r.promptIds);
    const eos = this.tokenizer.eosTokenId;
    const B = prompts.length;
    const T = Math.max(...prompts.map((p) => p.length));
    const ids = new BigInt64Array(B * T).fill(BigInt(eos));
    const mask = new BigInt64Array(B * T);
    prompts.forEach((p, b) => {
      for (let t = 0; t < p.length; t++) {
        ids[b * T + T - p.length + t] = BigInt(p[t]);
        mask[b * T + T - p.length + t] = 1n;
      }
    });
    let output: Tensor;
    try {
      output = (await this.lm.generate({
        input_ids: new Tensor('int64', ids, [B, T]),
        attention_mask: new Tensor('int64', mask, [B, T]),
        max_new_tokens: Math.max(...maxNew),
        do_sample: false,
        pad_token_id: eos,
        eos_token_id: eos,
      } as Parameters<PreTrainedModel['generate']>[0])) as Tensor;
    } catch (cause) {
      throw new GenerationError(`generate failed for a batch of ${B}: ${(cause as Error).message}`, { cause });
    }
    const width = output.dims[1];
    const data = output.data as BigInt64Array;
    return prompts.map((p, b) => {
      const generated: number[] = [];
      let finishReason: GenerationOutput['finishReason'] = 'length';
      for (let t = T; t < width && generated.length < maxNew[b]; t++) {
        const token = Number(data[b * width + t]);
        if (token === eos) {
          finishReason = 'stop';
          break;
        }
        generated.push(token);
      }
      return {
        text: this.tokenizer.decode(generated),
        promptTokens: p.length,
        generatedTokens: generated.length,
        finishReason,
      };
    });
  }

  async whenCapacity(): Promise<void> {}

  async close(): Promise<void> {
    await this.lm.dispose();
  }
}
