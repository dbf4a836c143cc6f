import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import { offlineTransformers } from '../models/transformers-env.js';
import { ModelLoadError } from '../errors/errors.js';

/**
 * A model's tokenizer, loaded once per process and shared by the prompt encoder (text → ids) and the generator
 * (ids → text). Never adds special tokens: prompts are plain text and end-of-text is the generator's business.
 */
export class TextTokenizer {
  private constructor(
    private readonly inner: PreTrainedTokenizer,
    /** The end-of-text token, which ends a generation. */
    readonly eosTokenId: number,
    /** The model's window in tokens (`n_positions` or `max_position_embeddings` of its `config.json`). */
    readonly window: number,
  ) {}

  /** Loads `tokenizer.json`, the end-of-text id and the window (`config.json`) from a local model folder; never from a hub. */
  static async load(dir: string): Promise<TextTokenizer> {
    offlineTransformers();
    const folder = path.resolve(dir);
    try {
      const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')) as {
        eos_token_id?: number;
        n_positions?: number;
        n_ctx?: number;
        max_position_embeddings?: number;
      };
      const inner = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
      return new TextTokenizer(
        inner,
        config.eos_token_id ?? 50256,
        config.n_positions ?? config.n_ctx ?? config.max_position_embeddings ?? 1024,
      );
    } catch (cause) {
      throw new ModelLoadError(`loading the tokenizer from ${folder} failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** The ids of a text. */
  encode(text: string): number[] {
    return this.inner.encode(text, { add_special_tokens: false });
  }

  /** The text of ids; special tokens are left out. */
  decode(ids: readonly number[]): string {
    return ids.length === 0 ? '' : this.inner.decode(ids as number[], { skip_special_tokens: true });
  }
}
