import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import { offlineTransformers } from '../models/transformers-env.js';
import { ModelLoadError } from '../errors/errors.js';
import { deriveChatFrame, type ChatFrame, type ChatRole } from '../models/chat-frame.js';

/**
 * A model's tokenizer, loaded once per process and shared by the prompt encoder (text → ids) and the generator
 * (ids → text). Text is always encoded as text: a user who types `<|im_start|>` gets the characters, never the
 * token, so no message or turn can open a role or end one. Only the chat template's own frame
 * ({@link encodeMarkup}) is read for special tokens.
 */
export class TextTokenizer {
  private readonly specials: ReadonlySet<number>;
  private readonly specialText: RegExp | undefined;

  private constructor(
    private readonly inner: PreTrainedTokenizer,
    /** The end-of-text token, which ends a generation. */
    readonly eosTokenId: number,
    /** The model's window in tokens (`n_positions` or `max_position_embeddings` of its `config.json`). */
    readonly window: number,
    /** How the model's chat template frames each message; absent for a model without one (plain completion). */
    readonly chat: ChatFrame | undefined,
    /** Languages the model writes (`languages` of its `config.json`, from GGUF's `general.languages`); absent: any. */
    readonly languages: readonly string[] | undefined,
  ) {
    this.specials = new Set(inner.all_special_ids);
    const literals = [...inner.all_special_tokens].sort((a, b) => b.length - a.length);
    const escaped = literals.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specialText = literals.length > 0 ? new RegExp(escaped.join('|'), 'g') : undefined;
  }

  /** Loads `tokenizer.json`, the end-of-text id and the window (`config.json`) from a local model folder; never from a hub. */
  static async load(dir: string): Promise<TextTokenizer> {
    offlineTransformers();
    const folder = path.resolve(dir);
    let inner: PreTrainedTokenizer;
    let config: {
      eos_token_id?: number;
      n_positions?: number;
      n_ctx?: number;
      max_position_embeddings?: number;
      languages?: string[];
    };
    try {
      config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')) as typeof config;
      inner = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
    } catch (cause) {
      throw new ModelLoadError(`loading the tokenizer from ${folder} failed: ${(cause as Error).message}`, { cause });
    }
    let chat: ChatFrame | undefined;
    if (inner.chat_template) {
      try {
        chat = deriveChatFrame(
          (messages, addGenerationPrompt) =>
            inner.apply_chat_template(messages, {
              tokenize: false,
              add_generation_prompt: addGenerationPrompt,
            }) as string,
        );
      } catch (cause) {
        throw new ModelLoadError(`the chat template of ${folder} cannot be used: ${(cause as Error).message}`, {
          cause,
        });
      }
    }
    const window = config.n_positions ?? config.n_ctx ?? config.max_position_embeddings ?? 1024;
    const languages = Array.isArray(config.languages) ? config.languages.map(String) : undefined;
    return new TextTokenizer(inner, config.eos_token_id ?? 50256, window, chat, languages);
  }

  /** The ids of a text, as text: a special token's literal in it is encoded as characters. */
  encode(text: string): number[] {
    const ids = this.inner.encode(text, { add_special_tokens: false });
    if (!this.specialText || !ids.some((id) => this.specials.has(id))) return ids;
    // Encode around each literal, and the literal as two pieces that no special token matches.
    const out: number[] = [];
    let last = 0;
    for (const m of text.matchAll(this.specialText)) {
      out.push(
        ...this.encode(text.slice(last, m.index)),
        ...this.encode(m[0].slice(0, 1)),
        ...this.encode(m[0].slice(1)),
      );
      last = m.index + m[0].length;
    }
    out.push(...this.encode(text.slice(last)));
    return out;
  }

  /** The ids of template text, whose special-token literals are the tokens (a chat frame's pieces). */
  encodeMarkup(text: string): number[] {
    return this.inner.encode(text, { add_special_tokens: false });
  }

  /** The ids of a chat frame's piece around a role's message. */
  frameIds(role: ChatRole, side: 'open' | 'close'): number[] {
    if (!this.chat) throw new Error('the model has no chat template');
    return this.encodeMarkup(this.chat[side][role]);
  }

  /** The text of ids; special tokens are left out. */
  decode(ids: readonly number[]): string {
    return ids.length === 0 ? '' : this.inner.decode(ids as number[], { skip_special_tokens: true });
  }
}
