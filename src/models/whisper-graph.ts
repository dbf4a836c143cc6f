import { int8MatMul, quantizeColumns, rowZeroPoints } from './int8-matmul.js';
import { ElemType, OnnxGraphBuilder } from './onnx-graph-builder.js';

/**
 * Whisper as three ONNX graphs of standard operators (opset 17): the encoder (log-mel features → hidden states, named
 * as in Hugging Face's exports), the cross-attention cache (hidden states → every decoder layer's keys and values)
 * and the decoder step (tokens, both caches → logits and the new self-attention cache). Read top-down: graphs, then
 * attention and blocks.
 * Shapes: B = batch, M = mel bins, F = feature frames (2·E), E = encoder positions, T = new tokens, P = past tokens,
 * S = P + T, H = heads, D = head size, C = H·D (d_model), V = vocabulary. Linear weights are stored [in, out]
 * (PyTorch's transposed), named as Hugging Face names them.
 */

/** Dimensions of a Whisper model. */
export interface WhisperDims {
  nMels: number;
  /** Encoder positions: half the feature frames (30 s of audio: 3,000 frames, 1,500 positions). */
  nAudioCtx: number;
  nTextCtx: number;
  dModel: number;
  nHeads: number;
  encoderLayers: number;
  decoderLayers: number;
  ffnDim: number;
  vocabSize: number;
}

/** Supplies one weight by its Hugging Face name; `kind` decides its initialisation when forged. */
export type WhisperWeights = (
  name: string,
  shape: number[],
  kind: 'linear' | 'embedding' | 'bias' | 'ln-gain' | 'ln-bias',
) => Float32Array;

/** ONNX opset of the graphs. */
export const WHISPER_OPSET = 17;

/** The encoder: two convolutions (the second halves the frames), positions, pre-LayerNorm blocks, a final LayerNorm. */
export function buildWhisperEncoder(
  d: WhisperDims,
  weights: WhisperWeights,
  opts: WhisperGraphOptions = {},
): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const w = weightsOf(g, weights, opts);
  const C = d.dModel;
  const features = g.input('input_features', ElemType.FLOAT, ['batch_size', d.nMels, 2 * d.nAudioCtx]); // [B, M, F]
  const conv1 = g.op(
    'Conv',
    [features, w('model.encoder.conv1.weight', [C, d.nMels, 3], 'linear'), w('model.encoder.conv1.bias', [C], 'bias')],
    { pads: [1, 1] },
  ); // [B, C, F]
  const conv2 = g.op(
    'Conv',
    [gelu(g, conv1), w('model.encoder.conv2.weight', [C, C, 3], 'linear'), w('model.encoder.conv2.bias', [C], 'bias')],
    { pads: [1, 1], strides: [2] },
  ); // [B, C, E]
  let x = g.op('Transpose', [gelu(g, conv2)], { perm: [0, 2, 1] }); // [B, E, C]
  x = g.op('Add', [x, w('model.encoder.embed_positions.weight', [d.nAudioCtx, C], 'embedding')]);
  for (let i = 0; i < d.encoderLayers; i++) {
    const p = `model.encoder.layers.${i}`;
    const h = layerNorm(g, w, x, `${p}.self_attn_layer_norm`, C);
    const { q, k, v } = projections(g, w, h, h, `${p}.self_attn`, d);
    const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    x = g.op('Add', [x, output(g, w, attend(g, q, kT, v, null, d), `${p}.self_attn`, d)]);
    x = g.op('Add', [x, feedForward(g, w, layerNorm(g, w, x, `${p}.final_layer_norm`, C), p, d)]);
  }
  g.op('Identity', [layerNorm(g, w, x, 'model.encoder.layer_norm', C)], {}, 'last_hidden_state');
  g.output('last_hidden_state', ElemType.FLOAT, ['batch_size', d.nAudioCtx, C]);
  return g;
}

/**
 * Cross-attention's keys and values of every decoder layer, from the encoder's states: computed once per utterance
 * (they depend on the audio only) and fed to every {@link buildWhisperDecoderStep}. Keys come transposed
 * (`cross.{i}.key` [B, H, D, E]), so that a step's attention reads them as they are, with no copy per step.
 */
export function buildWhisperCrossCache(
  d: WhisperDims,
  weights: WhisperWeights,
  opts: WhisperGraphOptions = {},
): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const w = weightsOf(g, weights, opts);
  const hidden = g.input('encoder_hidden_states', ElemType.FLOAT, ['batch_size', d.nAudioCtx, d.dModel]); // [B, E, C]
  const D = d.dModel / d.nHeads;
  for (let i = 0; i < d.decoderLayers; i++) {
    const p = `model.decoder.layers.${i}.encoder_attn`;
    g.op('Transpose', [projected(g, w, hidden, p, 'k_proj', d)], { perm: [0, 1, 3, 2] }, `cross.${i}.key`);
    g.op('Identity', [projected(g, w, hidden, p, 'v_proj', d)], {}, `cross.${i}.value`);
    g.output(`cross.${i}.key`, ElemType.FLOAT, ['batch_size', d.nHeads, D, d.nAudioCtx]);
    g.output(`cross.${i}.value`, ElemType.FLOAT, ['batch_size', d.nHeads, d.nAudioCtx, D]);
  }
  return g;
}

/**
 * One decoder step: `input_ids` [B, T] after `past.{i}.key|value` [B, H, P, D], attending to the audio through
 * `cross.{i}.key|value` ({@link buildWhisperCrossCache}) → `logits` [B, T, V] and `present.{i}.key|value` (the past
 * with the new tokens appended). Rows come in groups, one per window of audio (a window's beams): W windows of B / W
 * rows each, so that a window's cross-attention cache is fed once, never copied per beam or per step. The LM head is
 * tied to the token embedding.
 */
export function buildWhisperDecoderStep(
  d: WhisperDims,
  weights: WhisperWeights,
  opts: WhisperGraphOptions = {},
): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const w = weightsOf(g, weights, opts);
  const C = d.dModel;
  const D = C / d.nHeads;
  const ids = g.input('input_ids', ElemType.INT64, ['batch_size', 'decoder_sequence_length']); // [B, T]
  const layerInputs = Array.from({ length: d.decoderLayers }, (_, i) => ({
    key: g.input(`past.${i}.key`, ElemType.FLOAT, ['batch_size', d.nHeads, 'past_sequence_length', D]),
    value: g.input(`past.${i}.value`, ElemType.FLOAT, ['batch_size', d.nHeads, 'past_sequence_length', D]),
    crossKey: g.input(`cross.${i}.key`, ElemType.FLOAT, ['windows', d.nHeads, D, d.nAudioCtx]),
    crossValue: g.input(`cross.${i}.value`, ElemType.FLOAT, ['windows', d.nHeads, d.nAudioCtx, D]),
  }));

  // Positions continue after the past: P + [0, T).
  const one = g.int64([1], []);
  const pastLen = g.op('Gather', [g.op('Shape', [layerInputs[0].key]), g.int64([2], [])], { axis: 0 }); // scalar P
  const total = g.op('Add', [pastLen, g.op('Gather', [g.op('Shape', [ids]), one], { axis: 0 })]); // scalar S
  const positions = g.op('Range', [pastLen, total, one]); // [T]
  const tokens = w('model.decoder.embed_tokens.weight', [d.vocabSize, C], 'embedding');
  let x = g.op('Add', [
    g.op('Gather', [tokens, ids], { axis: 0 }),
    g.op('Gather', [w('model.decoder.embed_positions.weight', [d.nTextCtx, C], 'embedding'), positions], { axis: 0 }),
  ]); // [B, T, C]
  // Query t (position P + t) sees keys 0 … P + t.
  const causal = g.op('LessOrEqual', [
    g.op('Range', [g.int64([0], []), total, one]),
    g.op('Unsqueeze', [positions, g.int64([1])]),
  ]); // [T, S]
  const bias = g.op('Where', [causal, g.float(0), g.float(-1e9)]);

  for (const [i, past] of layerInputs.entries()) {
    const p = `model.decoder.layers.${i}`;
    const h = layerNorm(g, w, x, `${p}.self_attn_layer_norm`, C);
    const self = projections(g, w, h, h, `${p}.self_attn`, d);
    const k = g.op('Concat', [past.key, self.k], { axis: 2 }, `present.${i}.key`); // [B, H, S, D]
    const v = g.op('Concat', [past.value, self.v], { axis: 2 }, `present.${i}.value`);
    const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    x = g.op('Add', [x, output(g, w, attend(g, self.q, kT, v, bias, d), `${p}.self_attn`, d)]);
    const q = projected(g, w, layerNorm(g, w, x, `${p}.encoder_attn_layer_norm`, C), `${p}.encoder_attn`, 'q_proj', d);
    x = g.op('Add', [x, output(g, w, attendAudio(g, q, past.crossKey, past.crossValue, d), `${p}.encoder_attn`, d)]);
    x = g.op('Add', [x, feedForward(g, w, layerNorm(g, w, x, `${p}.final_layer_norm`, C), p, d)]);
    for (const kind of ['key', 'value'])
      g.output(`present.${i}.${kind}`, ElemType.FLOAT, ['batch_size', d.nHeads, 'total_sequence_length', D]);
  }
  const final = layerNorm(g, w, x, 'model.decoder.layer_norm', C);
  g.op('MatMul', [final, g.op('Transpose', [tokens], { perm: [1, 0] })], {}, 'logits'); // [B, T, V]
  g.output('logits', ElemType.FLOAT, ['batch_size', 'decoder_sequence_length', d.vocabSize]);
  return g;
}

/** How a graph is built: `int8` makes every linear layer but the tied LM head an int8 product. */
export interface WhisperGraphOptions {
  int8?: boolean;
}

interface Weight {
  (name: string, shape: number[], kind: Parameters<WhisperWeights>[2]): string;
  /** x · W for the linear weight `name` ([K, N]) over x's last axis: float32, or int8 in an int8 graph. */
  matmul(x: string, name: string, K: number, N: number): string;
}

function weightsOf(g: OnnxGraphBuilder, weights: WhisperWeights, opts: WhisperGraphOptions = {}): Weight {
  const w = ((name, shape, kind) => g.weight(name, shape, weights(name, shape, kind))) as Weight;
  w.matmul = (x, name, K, N) => {
    if (!opts.int8) return g.op('MatMul', [x, w(name, [K, N], 'linear')]);
    // Each token's activations quantized on their own (int8MatMul), weights per column, in the u8u8 form that is
    // exact on every x86 CPU; rows flattened for it and shaped back.
    const rows = g.op('Reshape', [x, g.int64([-1, K])]);
    const count = g.op('Gather', [g.op('Shape', [rows]), g.int64([0], [])], { axis: 0 });
    const columns = quantizeColumns(weights(name, [K, N], 'linear'), K, N);
    const y = int8MatMul(g, rows, name, columns, K, N, rowZeroPoints(g, count), 'u8u8');
    const lead = g.op('Slice', [g.op('Shape', [x]), g.int64([0]), g.int64([-1])]);
    return g.op('Reshape', [y, g.op('Concat', [lead, g.int64([N])], { axis: 0 })]);
  };
  return w;
}

/** `input` through one of a block's projections, split into heads: [B, H, ·, D]. Whisper's key has no bias. */
function projected(g: OnnxGraphBuilder, w: Weight, input: string, p: string, name: string, d: WhisperDims): string {
  const C = d.dModel;
  const y = w.matmul(input, `${p}.${name}.weight`, C, C);
  const biased = name === 'k_proj' ? y : g.op('Add', [y, w(`${p}.${name}.bias`, [C], 'bias')]);
  return g.op('Transpose', [g.op('Reshape', [biased, g.int64([0, 0, d.nHeads, C / d.nHeads])])], {
    perm: [0, 2, 1, 3],
  });
}

/** Queries from `x`, keys and values from `kv` (itself, or the encoder's states). */
function projections(g: OnnxGraphBuilder, w: Weight, x: string, kv: string, p: string, d: WhisperDims) {
  return {
    q: projected(g, w, x, p, 'q_proj', d),
    k: projected(g, w, kv, p, 'k_proj', d),
    v: projected(g, w, kv, p, 'v_proj', d),
  };
}

/**
 * Cross-attention of rows grouped by window: q [B, H, T, D] seen as [W, B / W, H, T, D] against one window's keys
 * [W, 1, H, D, E] and values [W, 1, H, E, D] (MatMul broadcasts them over the window's rows) → [B, H, T, D].
 */
function attendAudio(g: OnnxGraphBuilder, q: string, kT: string, v: string, d: WhisperDims): string {
  const qShape = g.op('Shape', [q]);
  const windows = g.op('Slice', [g.op('Shape', [kT]), g.int64([0]), g.int64([1])]);
  const grouped = g.op('Reshape', [
    q,
    g.op('Concat', [windows, g.int64([-1]), g.op('Slice', [qShape, g.int64([1]), g.int64([4])])], { axis: 0 }),
  ]);
  const one = g.int64([1]);
  const ctx = attend(g, grouped, g.op('Unsqueeze', [kT, one]), g.op('Unsqueeze', [v, one]), null, d);
  return g.op('Reshape', [ctx, qShape]);
}

/** softmax(q·kᵀ/√D + bias)·v: [B, H, T, D], from keys already transposed (kT: [B, H, D, S]). */
function attend(g: OnnxGraphBuilder, q: string, kT: string, v: string, bias: string | null, d: WhisperDims): string {
  let scores = g.op('Mul', [g.op('MatMul', [q, kT]), g.float(1 / Math.sqrt(d.dModel / d.nHeads))]); // [B, H, T, S]
  if (bias) scores = g.op('Add', [scores, bias]);
  return g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
}

/** Heads merged back and projected: [B, T, C]. */
function output(g: OnnxGraphBuilder, w: Weight, ctx: string, p: string, d: WhisperDims): string {
  const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), g.int64([0, 0, d.dModel])]);
  return g.op('Add', [
    w.matmul(merged, `${p}.out_proj.weight`, d.dModel, d.dModel),
    w(`${p}.out_proj.bias`, [d.dModel], 'bias'),
  ]);
}

function feedForward(g: OnnxGraphBuilder, w: Weight, x: string, p: string, d: WhisperDims): string {
  const hiddenUnits = gelu(
    g,
    g.op('Add', [w.matmul(x, `${p}.fc1.weight`, d.dModel, d.ffnDim), w(`${p}.fc1.bias`, [d.ffnDim], 'bias')]),
  );
  return g.op('Add', [
    w.matmul(hiddenUnits, `${p}.fc2.weight`, d.ffnDim, d.dModel),
    w(`${p}.fc2.bias`, [d.dModel], 'bias'),
  ]);
}

function layerNorm(g: OnnxGraphBuilder, w: Weight, x: string, p: string, C: number): string {
  return g.op('LayerNormalization', [x, w(`${p}.weight`, [C], 'ln-gain'), w(`${p}.bias`, [C], 'ln-bias')], {
    axis: -1,
    epsilon: 1e-5,
  });
}

/** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
function gelu(g: OnnxGraphBuilder, x: string): string {
  return g.op('Mul', [
    g.op('Mul', [x, g.float(0.5)]),
    g.op('Add', [g.op('Erf', [g.op('Mul', [x, g.float(Math.SQRT1_2)])]), g.float(1)]),
  ]);
}
