import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelForgeError } from '../errors/errors.js';
import { exists, moveIntoPlace } from './folder-files.js';
import { SeededNormal } from './seeded-normal.js';
import { buildTokenizerFiles, END_OF_TEXT } from './tokenizer-files.js';
import {
  buildWhisperDecoder,
  buildWhisperEncoder,
  WHISPER_OPSET,
  type WhisperDims,
  type WhisperWeights,
} from './whisper-graph.js';

/** English-only Whisper's special tokens after GPT-2's vocabulary, then the timestamps <|0.00|> … <|30.00|>. */
const SPECIALS = [
  '<|startoftranscript|>',
  '<|translate|>',
  '<|transcribe|>',
  '<|startoflm|>',
  '<|startofprev|>',
  '<|nocaptions|>',
  '<|notimestamps|>',
];
const FIRST_SPECIAL = 50257;
const TIMESTAMPS = 1501;
const VOCAB = FIRST_SPECIAL + SPECIALS.length + TIMESTAMPS;
const idOf = (token: string) => FIRST_SPECIAL + SPECIALS.indexOf(token);

/** Whisper shapes: `tiny.en` is OpenAI's smallest English model; `test` is small enough for every test run. */
export const WHISPER_PRESETS: Record<string, WhisperDims> = {
  'tiny.en': {
    nMels: 80,
    nAudioCtx: 1500,
    nTextCtx: 448,
    dModel: 384,
    nHeads: 6,
    encoderLayers: 4,
    decoderLayers: 4,
    ffnDim: 1536,
    vocabSize: VOCAB,
  },
  test: {
    nMels: 80,
    nAudioCtx: 1500,
    nTextCtx: 448,
    dModel: 64,
    nHeads: 4,
    encoderLayers: 2,
    decoderLayers: 2,
    ffnDim: 256,
    vocabSize: VOCAB,
  },
};

/**
 * Forges an English-only Whisper folder in the layout transformers.js's `automatic-speech-recognition` pipeline
 * loads (config, generation and preprocessor configs, tokenizer, `onnx/encoder_model.onnx`,
 * `onnx/decoder_model_merged.onnx`), with seeded random weights: it runs like a real one and transcribes noise.
 * Real Whisper exports load the same way. Written to a temporary sibling and renamed into place.
 */
export async function forgeWhisper(opts: {
  preset: string;
  outDir: string;
  seed?: number;
  force?: boolean;
}): Promise<{ outDir: string }> {
  const dims = WHISPER_PRESETS[opts.preset];
  if (!dims)
    throw new ModelForgeError(`unknown Whisper preset "${opts.preset}"`, {
      hint: `choose one of: ${Object.keys(WHISPER_PRESETS).join(', ')}`,
    });
  const outDir = path.resolve(opts.outDir);
  if (!opts.force && (await exists(outDir)))
    throw new ModelForgeError(`output folder ${outDir} already exists`, { hint: 'pass --force to replace it' });
  await mkdir(path.dirname(outDir), { recursive: true });
  const tmp = await mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.forging-`));
  try {
    await writeGraphs(tmp, dims, opts.seed ?? 42);
    await writeConfigs(tmp, dims, { preset: opts.preset, seed: opts.seed ?? 42 });
    await writeTokenizer(tmp, dims);
    await moveIntoPlace(tmp, outDir, opts.force ?? false);
    return { outDir };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof ModelForgeError) throw err;
    throw new ModelForgeError(`forging Whisper ${opts.preset} into ${outDir} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The encoder and the merged decoder, with seeded random weights (LayerNorm gains 1, biases 0). */
async function writeGraphs(tmp: string, dims: WhisperDims, seed: number): Promise<void> {
  const rng = new SeededNormal(seed);
  const weights: WhisperWeights = (_name, shape, kind) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (kind === 'ln-gain') return out.fill(1);
    if (kind === 'bias' || kind === 'ln-bias') return out;
    return rng.fill(out, 0.02);
  };
  await mkdir(path.join(tmp, 'onnx'));
  // One graph at a time, encoder first: the seeded weights are drawn in this order.
  const graphs = [
    { file: 'encoder_model.onnx', graphName: 'whisper-encoder', build: buildWhisperEncoder },
    { file: 'decoder_model_merged.onnx', graphName: 'whisper-decoder', build: buildWhisperDecoder },
  ];
  for (const { file, graphName, build } of graphs)
    await writeFile(
      path.join(tmp, 'onnx', file),
      build(dims, weights).encode({ opset: WHISPER_OPSET, producer: 'ava-model-forge', graphName }),
    );
}

/** config.json, generation_config.json and preprocessor_config.json, as a real English-only export has them. */
async function writeConfigs(tmp: string, dims: WhisperDims, forge: { preset: string; seed: number }): Promise<void> {
  const eos = FIRST_SPECIAL - 1;
  await writeJson(path.join(tmp, 'config.json'), {
    architectures: ['WhisperForConditionalGeneration'],
    model_type: 'whisper',
    is_encoder_decoder: true,
    d_model: dims.dModel,
    encoder_layers: dims.encoderLayers,
    decoder_layers: dims.decoderLayers,
    encoder_attention_heads: dims.nHeads,
    decoder_attention_heads: dims.nHeads,
    encoder_ffn_dim: dims.ffnDim,
    decoder_ffn_dim: dims.ffnDim,
    num_mel_bins: dims.nMels,
    max_source_positions: dims.nAudioCtx,
    max_target_positions: dims.nTextCtx,
    vocab_size: dims.vocabSize,
    bos_token_id: eos,
    eos_token_id: eos,
    pad_token_id: eos,
    decoder_start_token_id: idOf('<|startoftranscript|>'),
    use_cache: true,
    ava_forge: { ...forge, opset: WHISPER_OPSET },
  });
  await writeJson(path.join(tmp, 'generation_config.json'), {
    bos_token_id: eos,
    eos_token_id: eos,
    pad_token_id: eos,
    decoder_start_token_id: idOf('<|startoftranscript|>'),
    no_timestamps_token_id: idOf('<|notimestamps|>'),
    is_multilingual: false,
    max_length: dims.nTextCtx,
    begin_suppress_tokens: [220, eos],
  });
  await writeJson(path.join(tmp, 'preprocessor_config.json'), {
    feature_extractor_type: 'WhisperFeatureExtractor',
    processor_class: 'WhisperProcessor',
    feature_size: dims.nMels,
    sampling_rate: 16_000,
    hop_length: 160,
    chunk_length: 30,
    n_fft: 400,
    n_samples: 480_000,
    nb_max_frames: 2 * dims.nAudioCtx,
    padding_side: 'right',
    padding_value: 0,
    return_attention_mask: false,
  });
}

/** GPT-2's tokenizer with Whisper's special and timestamp tokens added. */
async function writeTokenizer(tmp: string, dims: WhisperDims): Promise<void> {
  const gpt2 = await buildTokenizerFiles();
  const added = [...SPECIALS, ...Array.from({ length: TIMESTAMPS }, (_, i) => `<|${(i * 0.02).toFixed(2)}|>`)].map(
    (content, i) => ({
      id: FIRST_SPECIAL + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }),
  );
  await writeJson(path.join(tmp, 'tokenizer.json'), {
    ...gpt2.tokenizerJson,
    added_tokens: [...(gpt2.tokenizerJson.added_tokens as unknown[]), ...added],
  });
  await writeJson(path.join(tmp, 'tokenizer_config.json'), {
    ...gpt2.tokenizerConfig,
    tokenizer_class: 'WhisperTokenizer',
    pad_token: END_OF_TEXT,
    model_max_length: dims.nTextCtx,
  });
}
