import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeJson } from './folder-files.js';
import {
  buildWhisperCrossCache,
  buildWhisperDecoderStep,
  buildWhisperEncoder,
  WHISPER_OPSET,
  type WhisperDims,
  type WhisperGraphOptions,
  type WhisperWeights,
} from './whisper-graph.js';

/** The special tokens a Whisper folder's configs name, by id. */
export interface WhisperTokens {
  endOfText: number;
  startOfTranscript: number;
  transcribe: number;
  translate: number;
  noTimestamps: number;
  /** A multilingual model's language tokens by ISO 639-1 code (`en` → `<|en|>`'s id); none for English-only. */
  languages: Readonly<Record<string, number>>;
}

/** How the folder's model generates: its tokens, and the tokens it never writes (first, or at all). */
export interface WhisperGeneration {
  tokens: WhisperTokens;
  suppress: readonly number[];
  beginSuppress: readonly number[];
  /** Cross-attention heads that align text with audio, [layer, head], where the model names them. */
  alignmentHeads?: ReadonlyArray<readonly [number, number]>;
}

/** The graphs of a Whisper folder, under `onnx/` (see whisper-graph.ts). */
export const WHISPER_GRAPH_FILES = {
  encoder: 'encoder_model.onnx',
  crossCache: 'decoder_cross_cache.onnx',
  decoderStep: 'decoder_step.onnx',
} as const;

/**
 * Writes Whisper as AVA's recogniser loads it: the encoder, the cross-attention cache and the decoder step (`onnx/`),
 * config.json, generation_config.json and preprocessor_config.json (Hugging Face's names, so that transformers.js's
 * feature extractor and tokenizer read them). The tokenizer files are
 * the caller's. `origin` is recorded in config.json (`ava_origin`): where the weights came from.
 */
export async function writeWhisperFolder(
  dir: string,
  dims: WhisperDims,
  weights: WhisperWeights,
  generation: WhisperGeneration,
  origin: Record<string, unknown>,
  graphOptions: WhisperGraphOptions = {},
): Promise<void> {
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  // One graph at a time, encoder first (forged weights are drawn in this order).
  const graphs = [
    { file: WHISPER_GRAPH_FILES.encoder, graphName: 'whisper-encoder', build: buildWhisperEncoder },
    { file: WHISPER_GRAPH_FILES.crossCache, graphName: 'whisper-cross-cache', build: buildWhisperCrossCache },
    { file: WHISPER_GRAPH_FILES.decoderStep, graphName: 'whisper-decoder-step', build: buildWhisperDecoderStep },
  ];
  for (const { file, graphName, build } of graphs)
    await writeFile(
      path.join(dir, 'onnx', file),
      build(dims, weights, graphOptions).encode({ opset: WHISPER_OPSET, producer: 'ava-model-forge', graphName }),
    );
  const { tokens } = generation;
  const multilingual = Object.keys(tokens.languages).length > 0;
  const ids = {
    bos_token_id: tokens.endOfText,
    eos_token_id: tokens.endOfText,
    pad_token_id: tokens.endOfText,
    decoder_start_token_id: tokens.startOfTranscript,
  };
  await writeJson(path.join(dir, 'config.json'), {
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
    ...ids,
    use_cache: true,
    ava_origin: { ...origin, opset: WHISPER_OPSET, ...(graphOptions.int8 ? { int8: 'u8u8' } : {}) },
  });
  await writeJson(path.join(dir, 'generation_config.json'), {
    ...ids,
    no_timestamps_token_id: tokens.noTimestamps,
    is_multilingual: multilingual,
    ...(multilingual
      ? {
          lang_to_id: Object.fromEntries(Object.entries(tokens.languages).map(([code, id]) => [`<|${code}|>`, id])),
          task_to_id: { transcribe: tokens.transcribe, translate: tokens.translate },
        }
      : {}),
    max_length: dims.nTextCtx,
    suppress_tokens: [...generation.suppress],
    begin_suppress_tokens: [...generation.beginSuppress],
    ...(generation.alignmentHeads ? { alignment_heads: generation.alignmentHeads.map((h) => [...h]) } : {}),
  });
  await writeJson(path.join(dir, 'preprocessor_config.json'), {
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
