import type { ModelPreset } from './presets.js';
import { ElemType, OnnxGraphBuilder } from './onnx-graph-builder.js';
import { int8MatMul, quantizeColumns, rowZeroPoints, type Int8Formulation } from './int8-matmul.js';

/**
 * GPT-2 as an ONNX graph of standard operators (opset 17), bottom-up in the manner of nanoGPT's `model.py`.
 *
 * Inputs and outputs are those of the standard text-generation-with-past export that transformers.js loads:
 * `input_ids`, `attention_mask`, `position_ids`, `past_key_values.{i}.key|value` → `logits`, `present.{i}.key|value`.
 * Shapes: B = batch, T = new tokens, P = past length (may be 0), S = P + T, H = heads, D = head size, C = H·D.
 */

/** Supplies one weight tensor by its Hugging Face name; called once per tensor, in graph order. */
export type WeightSource = (name: string, shape: number[], kind: WeightKind) => Float32Array;

/** What a weight is, which decides its initialisation. */
export type WeightKind = 'embedding' | 'linear' | 'residual-linear' | 'bias' | 'ln-gain' | 'ln-bias';

/** ONNX opset of forged graphs (LayerNormalization needs 17). */
export const GPT2_OPSET = 17;

/**
 * Which interface the graph has.
 * - `standard`: the text-generation-with-past export (`present.*` = past ⧺ new, logits at every position).
 * - `engine`: what the continuous-batching engine needs. The cache comes in as `cache.{i}.key|value` [B, H, P, D]
 *   and is only read, never concatenated (so no per-step copy of it); the outputs are the new tokens' keys and
 *   values `new.{i}.key|value` [B, H, T, D] and the logits of the last position only, `logits` [B, V], because only
 *   there is a next token needed. Cache slots may hold tokens in any order: GPT-2 adds positions at the input.
 */
export type GraphMode = 'standard' | 'engine';

/** Precision of the linear layers' weights: float32, or int8 per output column with per-token int8 activations. */
export type WeightPrecision = 'fp32' | 'int8';

/**
 * Builds the full GPT-2 graph, pulling each weight from `weights`. An int8 graph hands its products to ONNX Runtime in
 * `formulation` (see {@link Int8Formulation}; the default is exact on every CPU).
 */
export function buildGpt2Graph(p: ModelPreset, weights: WeightSource, mode: GraphMode = 'standard', precision: WeightPrecision = 'fp32', formulation: Int8Formulation = 'u8u8'): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const C = p.nEmbd;
  const H = p.nHead;
  const D = C / H;
  const engine = mode === 'engine';

  const inputIds = g.input('input_ids', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]
  const attentionMask = g.input('attention_mask', ElemType.INT64, ['batch_size', 'total_sequence_length']); // [B, S]
  const positionIds = g.input('position_ids', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]
  const past: Array<{ key: string; value: string }> = [];
  const pastName = engine ? 'cache' : 'past_key_values';
  for (let i = 0; i < p.nLayer; i++) {
    past.push({
      key: g.input(`${pastName}.${i}.key`, ElemType.FLOAT, ['batch_size', H, 'past_sequence_length', D]),
      value: g.input(`${pastName}.${i}.value`, ElemType.FLOAT, ['batch_size', H, 'past_sequence_length', D]),
    });
  }

  // Embeddings: token + learned position.
  const wteData = weights('transformer.wte.weight', [p.vocabSize, C], 'embedding');
  const wte = g.weight('transformer.wte.weight', [p.vocabSize, C], wteData);
  const wpe = g.weight('transformer.wpe.weight', [p.nPositions, C], weights('transformer.wpe.weight', [p.nPositions, C], 'embedding'));
  let x = g.op('Add', [g.op('Gather', [wte, inputIds], { axis: 0 }), g.op('Gather', [wpe, positionIds], { axis: 0 })]); // [B, T, C]

  const bias = attentionBias(g, inputIds, attentionMask); // [B, 1, T, S]
  const scale = g.float(1 / Math.sqrt(D));
  const headsShape = g.int64([0, 0, H, D]);
  const mergedShape = g.int64([0, 0, C]);
  const splitSizes = g.int64([C, C, C]);

  // The previous block's MLP output and bias, added to the residual stream together with the next LayerNorm.
  let pending: Residual | undefined;
  const fused = precision !== 'fp32';
  // The int8 GEMMs take [B·T, K]; their results go back to [B, T, N] through shapes made once.
  const inputShape = fused ? g.op('Shape', [inputIds]) : ''; // [2] = B, T
  const tokenZeroPoints = fused ? rowZeroPoints(g, g.op('ReduceProd', [inputShape], { keepdims: 0 })) : '';
  const shapeWith = new Map<number, string>();
  const toRows = (t: string, K: number) => g.op('Reshape', [t, g.int64([-1, K])]);
  const fromRows = (t: string, N: number) => {
    if (!shapeWith.has(N)) shapeWith.set(N, g.op('Concat', [inputShape, g.int64([N])], { axis: 0 }));
    return g.op('Reshape', [t, shapeWith.get(N)!]);
  };
  for (let i = 0; i < p.nLayer; i++) {
    const w = (suffix: string, shape: number[], kind: WeightKind) => {
      const name = `transformer.h.${i}.${suffix}`;
      return g.weight(name, shape, weights(name, shape, kind));
    };
    /** x · W for a [K, N] weight, in the graph's precision. */
    const matmul = (x: string, suffix: string, K: number, N: number, kind: WeightKind) => {
      if (precision === 'fp32') return g.op('MatMul', [x, w(suffix, [K, N], kind)]);
      const name = `transformer.h.${i}.${suffix}`;
      return fromRows(int8MatMul(g, toRows(x, K), name, quantizeColumns(weights(name, [K, N], kind), K, N), K, N, tokenZeroPoints, formulation), N);
    };
    // Attention sub-block (pre-LayerNorm).
    const ln1 = [w('ln_1.weight', [C], 'ln-gain'), w('ln_1.bias', [C], 'ln-bias')] as const;
    let h1: string;
    if (pending) ({ x, normed: h1 } = residualNorm(g, x, pending, ln1, fused));
    else h1 = layerNorm(g, x, ...ln1);
    const qkv = g.op('Add', [matmul(h1, 'attn.c_attn.weight', C, 3 * C, 'linear'), w('attn.c_attn.bias', [3 * C], 'bias')]); // [B, T, 3C]
    const [q, k, v] = g.opN('Split', [qkv, splitSizes], 3, { axis: 2 }).map(
      (t) => g.op('Transpose', [g.op('Reshape', [t, headsShape])], { perm: [0, 2, 1, 3] }), // [B, H, T, D]
    );
    const ctx = engine
      ? cacheAttention(g, i, q, k, v, past[i], bias, scale, [H, D]) // [B, H, T, D]
      : concatAttention(g, i, q, k, v, past[i], bias, scale, [H, D]); // [B, H, T, D]
    const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), mergedShape]); // [B, T, C]
    const attnOut = { proj: matmul(merged, 'attn.c_proj.weight', C, C, 'residual-linear'), bias: w('attn.c_proj.bias', [C], 'bias') };

    // MLP sub-block.
    let h2: string;
    ({ x, normed: h2 } = residualNorm(g, x, attnOut, [w('ln_2.weight', [C], 'ln-gain'), w('ln_2.bias', [C], 'ln-bias')], fused));
    const fc = matmul(h2, 'mlp.c_fc.weight', C, 4 * C, 'linear'); // [B, T, 4C]
    const fcBias = w('mlp.c_fc.bias', [4 * C], 'bias');
    // The int8 graph adds the bias and applies GELU in one kernel, ONNX Runtime's FastGelu (the same tanh formula); the
    // float32 graph keeps the standard operators, whose output equals transformers.js's token for token.
    const gelu = precision === 'fp32' ? geluTanh(g, g.op('Add', [fc, fcBias])) : g.opN('FastGelu', [fc, fcBias], 1, {}, undefined, 'com.microsoft')[0];
    pending = { proj: matmul(gelu, 'mlp.c_proj.weight', 4 * C, C, 'residual-linear'), bias: w('mlp.c_proj.bias', [C], 'bias') };
  }
  if (pending) x = g.op('Add', [x, g.op('Add', [pending.proj, pending.bias])]);

  const lnf = g.weight('transformer.ln_f.weight', [C], weights('transformer.ln_f.weight', [C], 'ln-gain'));
  const lnfB = g.weight('transformer.ln_f.bias', [C], weights('transformer.ln_f.bias', [C], 'ln-bias'));
  // LM head tied to the token embedding: logits = final · wteᵀ. ORT folds the constant transpose once at load.
  const wteT = () => g.op('Transpose', [wte], { perm: [1, 0] }); // [C, V]
  if (engine) {
    // Only the last position needs a next token; with left padding it is the same index T - 1 in every row.
    const lastIndex = g.op('Sub', [g.op('Gather', [g.op('Shape', [inputIds]), g.int64([1], [])], { axis: 0 }), g.int64([1], [])]);
    const last = g.op('Gather', [x, lastIndex], { axis: 1 }); // [B, C]
    const final = layerNorm(g, last, lnf, lnfB); // [B, C]
    if (precision === 'fp32') g.op('MatMul', [final, wteT()], {}, 'logits'); // [B, V]
    else {
      const batchZeroPoints = rowZeroPoints(g, g.op('Gather', [inputShape, g.int64([0], [])], { axis: 0 }));
      g.op('Identity', [int8MatMul(g, final, 'lm_head', transposedColumns(wteData, p.vocabSize, C), C, p.vocabSize, batchZeroPoints, formulation)], {}, 'logits'); // [B, V]
    }
    g.output('logits', ElemType.FLOAT, ['batch_size', p.vocabSize]);
  } else {
    g.op('MatMul', [layerNorm(g, x, lnf, lnfB), wteT()], {}, 'logits'); // [B, T, V]
    g.output('logits', ElemType.FLOAT, ['batch_size', 'sequence_length', p.vocabSize]);
  }
  return g;
}

type Kv = { key: string; value: string };

/** Standard attention: present = past ⧺ new (an output), attention over it. */
function concatAttention(g: OnnxGraphBuilder, i: number, q: string, k: string, v: string, past: Kv, bias: string, scale: string, [H, D]: number[]): string {
  const kAll = g.op('Concat', [past.key, k], { axis: 2 }, `present.${i}.key`); // [B, H, S, D]
  const vAll = g.op('Concat', [past.value, v], { axis: 2 }, `present.${i}.value`); // [B, H, S, D]
  g.output(kAll, ElemType.FLOAT, ['batch_size', H, 'total_sequence_length', D]);
  g.output(vAll, ElemType.FLOAT, ['batch_size', H, 'total_sequence_length', D]);
  const kT = g.op('Transpose', [kAll], { perm: [0, 1, 3, 2] }); // [B, H, D, S]
  const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), scale]), bias]); // [B, H, T, S]
  const probs = g.op('Softmax', [scores], { axis: -1 });
  return g.op('MatMul', [probs, vAll]); // [B, H, T, D]
}

/**
 * Engine attention. Decode: scores against the cache and against the new tokens are computed apart and only the
 * (small) score tensors are concatenated, so the cache is read in place instead of being copied every step. Prefill
 * (an empty cache) takes a branch without the concatenation and the slices, which there would copy [B, H, T, T]
 * tensors for nothing; its results are the same bit for bit. The new keys and values are outputs for the engine to
 * write into its cache.
 */
export function cacheAttention(g: OnnxGraphBuilder, i: number, q: string, k: string, v: string, cache: Kv, bias: string, scale: string, [H, D]: number[]): string {
  g.op('Identity', [k], {}, `new.${i}.key`);
  g.op('Identity', [v], {}, `new.${i}.value`);
  g.output(`new.${i}.key`, ElemType.FLOAT, ['batch_size', H, 'sequence_length', D]);
  g.output(`new.${i}.value`, ElemType.FLOAT, ['batch_size', H, 'sequence_length', D]);
  const t = (x: string) => g.op('Transpose', [x], { perm: [0, 1, 3, 2] });
  const pastLen = g.op('Gather', [g.op('Shape', [cache.key]), g.int64([2])], { axis: 0 }); // [1] = P
  const out = { elemType: ElemType.FLOAT, dims: ['batch_size', H, 'sequence_length', D] };
  const prefill = g.branch(`prefill_${i}`, () => {
    const probs = g.op('Softmax', [g.op('Add', [g.op('Mul', [g.op('MatMul', [q, t(k)]), scale]), bias])], { axis: -1 }); // [B, H, T, T]
    return g.op('MatMul', [probs, v]); // [B, H, T, D]
  }, out);
  const decode = g.branch(`decode_${i}`, () => {
    const pastScores = g.op('MatMul', [q, t(cache.key)]); // [B, H, T, P]
    const newScores = g.op('MatMul', [q, t(k)]); // [B, H, T, T]
    const scores = g.op('Add', [g.op('Mul', [g.op('Concat', [pastScores, newScores], { axis: 3 }), scale]), bias]); // [B, H, T, P + T]
    const probs = g.op('Softmax', [scores], { axis: -1 });
    const axis = g.int64([3]);
    const pastProbs = g.op('Slice', [probs, g.int64([0]), pastLen, axis]); // [B, H, T, P]
    const newProbs = g.op('Slice', [probs, pastLen, g.int64([Number.MAX_SAFE_INTEGER]), axis]); // [B, H, T, T]
    return g.op('Add', [g.op('MatMul', [pastProbs, cache.value]), g.op('MatMul', [newProbs, v])]); // [B, H, T, D]
  }, out);
  return g.op('If', [g.op('Equal', [pastLen, g.int64([0])])], { then_branch: { graph: prefill }, else_branch: { graph: decode } }); // [B, H, T, D]
}

/**
 * Additive attention bias [B, 1, T, S]: 0 where query t (absolute position P + t) may see key j — j ≤ P + t and
 * attention_mask[b, j] = 1 — and a large negative number elsewhere, so padded slots get zero weight. A fully masked
 * row (a left-padding query) becomes uniform instead of NaN; its output is never read.
 */
function attentionBias(g: OnnxGraphBuilder, inputIds: string, attentionMask: string): string {
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  const t = g.op('Gather', [g.op('Shape', [inputIds]), one], { axis: 0 }); // scalar T
  const s = g.op('Gather', [g.op('Shape', [attentionMask]), one], { axis: 0 }); // scalar S
  const pastLen = g.op('Sub', [s, t]); // scalar P
  const keyPos = g.op('Range', [zero, s, one]); // [S]
  const queryPos = g.op('Unsqueeze', [g.op('Range', [pastLen, s, one]), g.int64([1])]); // [T, 1]
  const causal = g.op('LessOrEqual', [keyPos, queryPos]); // [T, S]
  const keep = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: ElemType.BOOL }), g.int64([1, 2])]); // [B, 1, 1, S]
  const allowed = g.op('And', [causal, keep]); // [B, 1, T, S]
  return g.op('Where', [allowed, g.float(0), g.float(-1e9)]);
}

/** A sub-block's output before its bias: what is added to the residual stream. */
interface Residual {
  proj: string;
  bias: string;
}

/**
 * x + (proj + bias), and its LayerNorm. `fused` does both in ONNX Runtime's SkipLayerNormalization (one kernel instead
 * of three; the int8 graph); otherwise the standard operators, in the order transformers.js's export computes them.
 */
function residualNorm(g: OnnxGraphBuilder, x: string, r: Residual, [gain, beta]: readonly [string, string], fused: boolean): { x: string; normed: string } {
  if (!fused) {
    const sum = g.op('Add', [x, g.op('Add', [r.proj, r.bias])]);
    return { x: sum, normed: layerNorm(g, sum, gain, beta) };
  }
  const id = g.opN('SkipLayerNormalization', [r.proj, x, gain, beta, r.bias], 4, { epsilon: 1e-5 }, undefined, 'com.microsoft');
  return { x: id[3], normed: id[0] };
}

function layerNorm(g: OnnxGraphBuilder, x: string, gain: string, bias: string): string {
  return g.op('LayerNormalization', [x, gain, bias], { axis: -1, epsilon: 1e-5 });
}

/** GPT-2's GELU (tanh approximation): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function geluTanh(g: OnnxGraphBuilder, x: string): string {
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.float(0.044715)])]), g.float(Math.sqrt(2 / Math.PI))]);
  const tanh = g.op('Tanh', [inner]);
  return g.op('Mul', [g.op('Mul', [x, g.float(0.5)]), g.op('Add', [tanh, g.float(1)])]);
}

/** The tied LM head wteᵀ [C, V] quantized per column, that is per vocabulary entry. */
function transposedColumns(wte: Float32Array, V: number, C: number) {
  const head = new Float32Array(C * V);
  for (let v = 0; v < V; v++) for (let c = 0; c < C; c++) head[c * V + v] = wte[v * C + c];
  return quantizeColumns(head, C, V);
}
