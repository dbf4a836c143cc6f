import { ModelLoadError } from '../errors/errors.js';
import type { GgufFile } from './gguf-file.js';

/** Pre-tokenizers of the byte-level BPE vocabularies this writer knows, by GGUF's `tokenizer.ggml.pre`. */
const PRE_TOKENIZERS: Record<string, unknown> = {
  gpt2: byteLevel(true),
  default: byteLevel(true),
  // llama.cpp's SMOLLM type: every digit on its own, then GPT-2's split.
  smollm: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] },
  qwen2: {
    type: 'Sequence',
    pretokenizers: [
      {
        type: 'Split',
        pattern: {
          Regex:
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        },
        behavior: 'Isolated',
        invert: false,
      },
      byteLevel(false),
    ],
  },
};

function byteLevel(useRegex: boolean) {
  return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex };
}

/** GGUF token types (llama.cpp's `llama_token_type`): control and user-defined tokens are matched whole. */
const CONTROL = 3;
const USER_DEFINED = 4;

/** The tokenizer files of a model folder, made from a GGUF file's vocabulary. */
export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  bos: number;
  eos: number;
}

/**
 * Hugging Face `tokenizer.json` and `tokenizer_config.json` from the vocabulary stored in a GGUF file (byte-level BPE,
 * `tokenizer.ggml.model` = `gpt2`): the tokens, the merges, the special tokens, the pre-tokenizer its
 * `tokenizer.ggml.pre` names, and the chat template. transformers.js and Hugging Face's tokenizers load the result.
 */
export function tokenizerFromGguf(gguf: GgufFile, window: number): TokenizerFiles {
  const model = gguf.get('tokenizer.ggml.model', 'string');
  if (model !== 'gpt2')
    throw new ModelLoadError(
      `${gguf.file}: its tokenizer is ${JSON.stringify(model)}; only byte-level BPE (gpt2) vocabularies are converted from GGUF`,
      { hint: 'bring the model as a Hugging Face folder with its tokenizer.json instead' },
    );
  const pre = String(gguf.optional('tokenizer.ggml.pre') ?? 'default');
  const preTokenizer = PRE_TOKENIZERS[pre];
  if (!preTokenizer)
    throw new ModelLoadError(
      `${gguf.file}: pre-tokenizer ${JSON.stringify(pre)} is not known (${Object.keys(PRE_TOKENIZERS).join(', ')} are)`,
    );
  const tokens = gguf.get('tokenizer.ggml.tokens', 'array').map(String);
  const types = (gguf.optional('tokenizer.ggml.token_type') as number[] | undefined) ?? [];
  const merges = gguf.get('tokenizer.ggml.merges', 'array').map(String);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => (vocab[t] = id));
  const addedTokens = tokens.flatMap((content, id) =>
    types[id] === CONTROL || types[id] === USER_DEFINED
      ? [
          {
            id,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[id] === CONTROL,
          },
        ]
      : [],
  );
  const bos = gguf.get('tokenizer.ggml.bos_token_id', 'number');
  const eos = gguf.get('tokenizer.ggml.eos_token_id', 'number');
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const template = gguf.optional('tokenizer.chat_template');
  const tokenizerConfig = {
    tokenizer_class: 'GPT2Tokenizer',
    add_bos_token: gguf.optional('tokenizer.ggml.add_bos_token') === true,
    add_prefix_space: false,
    bos_token: tokens[bos],
    eos_token: tokens[eos],
    unk_token: tokens[Number(gguf.optional('tokenizer.ggml.unknown_token_id') ?? eos)],
    pad_token: tokens[Number(gguf.optional('tokenizer.ggml.padding_token_id') ?? eos)],
    model_max_length: window,
    clean_up_tokenization_spaces: false,
    ...(typeof template === 'string' ? { chat_template: template } : {}),
  };
  return { tokenizerJson, tokenizerConfig, bos, eos };
}
