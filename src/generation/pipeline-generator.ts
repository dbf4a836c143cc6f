import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor, type PreTrainedModel, type PreTrainedTokenizer } from '@huggingface/transformers';
import { GenerationError, ModelLoadError } from '../errors/errors.js';
import { modelRevision } from '../models/model-revision.js';
import { fitToWindow } from './prompt-window.js';
import type { GenerationOutput, GenerationRequest, GenerationResult, TextGenerator } from './text-generator.js';

/** Options of the transformers.js generator. */
export interface PipelineGeneratorOptions {
  /** Model id recorded on replies. */
  id: string;
  /** Resolved model directory. */
  dir: string;
  /** ONNX Runtime intra-op threads; 0 lets the runtime choose. */
  intraOpThreads?: number;
}

/**
 * Batched greedy generation with transformers.js: every batch is left-padded and continued in ONE `model.generate`
 * call. Each prompt is cut from the left so that prompt + new tokens fit the model's window. This is the baseline
 * the continuous-batching engine is measured against; it ignores sampling settings and stop strings.
 */
export class PipelineGenerator implements TextGenerator {
  private constructor(
    readonly model: { readonly id: string; readonly revision: string },
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly lm: PreTrainedModel,
    /** The model's window. */
    readonly window: number,
    private readonly eosTokenId: number,
  ) {}

  /** Loads tokenizer and model from a local directory (never from a hub). */
  static async load(opts: PipelineGeneratorOptions): Promise<PipelineGenerator> {
    // Serving never goes online: a model that is not on disk is an error, not a download.
    env.allowRemoteModels = false;
    const dir = path.resolve(opts.dir);
    try {
      const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { n_positions?: number; eos_token_id?: number };
      const tokenizer = await AutoTokenizer.from_pretrained(dir, { local_files_only: true });
      const lm = await AutoModelForCausalLM.from_pretrained(dir, {
        dtype: 'fp32',
        local_files_only: true,
        session_options: opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {},
      });
      const revision = await modelRevision(dir);
      return new PipelineGenerator({ id: opts.id, revision }, tokenizer, lm, config.n_positions ?? 1024, config.eos_token_id ?? 50256);
    } catch (cause) {
      throw new ModelLoadError(`loading model ${opts.id} from ${opts.dir} failed: ${(cause as Error).message}`, { cause });
    }
  }

  countTokens(text: string): number {
    return this.tokenizer.encode(text, { add_special_tokens: false }).length;
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
    const fitted = requests.map((r) => fitToWindow(this.tokenizer.encode(r.prompt, { add_special_tokens: false }), r.maxNewTokens, this.window, this.eosTokenId));
    const maxNew = fitted.map((f) => f.maxNew);
    const prompts = fitted.map((f) => f.ids);
    const B = prompts.length;
    const T = Math.max(...prompts.map((p) => p.length));
    const ids = new BigInt64Array(B * T).fill(BigInt(this.eosTokenId));
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
        pad_token_id: this.eosTokenId,
        eos_token_id: this.eosTokenId,
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
        if (token === this.eosTokenId) {
          finishReason = 'stop';
          break;
        }
        generated.push(token);
      }
      return { text: this.tokenizer.decode(generated, { skip_special_tokens: true }), promptTokens: p.length, generatedTokens: generated.length, finishReason };
    });
  }

  async close(): Promise<void> {
    await this.lm.dispose();
  }
}
