import { ElemType, OnnxGraphBuilder } from './onnx-graph-builder.js';
import { blockwiseInt8MatMul, stackRows } from './blockwise-int8.js';
import { attentionBias } from './attention-bias.js';
import { columnsOf } from './weight-columns.js';
import type { GraphMode, WeightPrecision } from './gpt2-graph.js';
import type { LlamaShape } from './llama-shape.js';
import { llamaAttention, type LlamaAttentionInputs } from './llama-attention.js';

/**
 * A Llama-family decoder (Llama, SmolLM2, TinyLlama, Qwen2) as an ONNX graph of standard operators: RMSNorm,
 * rotary position embeddings (Hugging Face's rotate-half form), grouped-query attention and a SwiGLU MLP.
 *
 * The interface is GPT-2's (see `GraphMode`): `standard` is the text-generation-with-past export transformers.js
 * loads (`past_key_values.{i}.key|value` → `present.*`, logits at every position, the weights under their Hugging
 * Face names and shapes); `engine` reads the cache `cache.{i}.key|value` in place, returns the new tokens' keys and
 * values `new.{i}.*` and the last position's logits. Keys are cached after rotation, so they carry their position and
 * a cache row may hold its tokens in any slot order, as GPT-2's do. The cache holds the shared key/value heads only
 * ([B, Hkv, P, D]); each query group reads its head once, as a [G·T, D] block against it.
 * Shapes: B = batch, T = new tokens, P = past length, H query heads, Hkv key/value heads, G = H / Hkv, D head size.
 */

/** Supplies one weight by its Hugging Face name, in its Hugging Face shape (a linear layer's is [out, in]). */
export type LlamaWeightSource = (name: string, shape: number[]) => Float32Array;

/** ONNX opset of Llama graphs. */
export const LLAMA_OPSET = 17;

/**
 * Builds the graph, pulling each weight once from `weights`. An int8 graph quantizes the linear layers and the LM head
 * in blocks of 32 (see {@link blockwiseInt8MatMul}); attention, norms and embeddings stay float32.
 */
export function buildLlamaGraph(
  s: LlamaShape,
  weights: LlamaWeightSource,
  mode: GraphMode = 'standard',
  precision: WeightPrecision = 'fp32',
): OnnxGraphBuilder {
  if (precision === 'int8' && mode !== 'engine') throw new Error('int8 Llama graphs exist in the engine form only');
  const g = new OnnxGraphBuilder();
  const engine = mode === 'engine';
  const io = graphInputs(g, s, engine);
  // 1/√D is a power of two for the usual head sizes (64, 256): folded into the query weights, the scores come out
  // bit for bit the same and the graph skips a product over every score.
  const scale = 1 / Math.sqrt(s.headDim);
  const foldScale = engine && Number.isInteger(Math.log2(scale));
  const source = foldScale ? scaledQueries(weights, scale) : weights;
  const linear = linearLayers(g, source, engine, precision);
  const G = s.nHead / s.nKvHead;
  const bias = attentionBias(g, io.inputIds, io.attentionMask); // [B, 1, T, S]
  const attention: LlamaAttentionInputs = {
    engine,
    bias: G === 1 ? bias : g.op('Tile', [bias, g.int64([1, 1, G, 1])]), // [B, 1, G·T, S]: row g·T + t is query t
    rope: engine ? rotaryCache(g, s, io.positionIds) : rotaryTables(g, s, io.positionIds),
    scale: foldScale ? null : g.float(scale),
    shape: s,
  };
  const embedName = 'model.embed_tokens.weight';
  const embedData = weights(embedName, [s.vocabSize, s.hidden]);
  const embed = g.weight(embedName, [s.vocabSize, s.hidden], embedData);
  let x = g.op('Gather', [embed, io.inputIds], { axis: 0 });
  for (let i = 0; i < s.nLayer; i++) x = block(g, s, source, linear, i, x, io.past[i], attention);
  const normW = g.weight('model.norm.weight', [s.hidden], weights('model.norm.weight', [s.hidden]));
  const headData = s.tiedEmbeddings ? embedData : weights('lm_head.weight', [s.vocabSize, s.hidden]);
  if (!engine) {
    const final = rmsNorm(g, x, normW, s.rmsEps);
    const head = s.tiedEmbeddings
      ? g.op('Transpose', [embed], { perm: [1, 0] })
      : linear.transposed('lm_head.weight', [s.vocabSize, s.hidden], headData);
    g.op('MatMul', [final, head], {}, 'logits');
    g.output('logits', ElemType.FLOAT, ['batch_size', 'sequence_length', s.vocabSize]);
    return g;
  }
  // Only the last position needs a next token; with left padding it is the same index T - 1 in every row.
  const T = g.op('Gather', [g.op('Shape', [io.inputIds]), g.int64([1], [])], { axis: 0 });
  const last = g.op('Gather', [x, g.op('Sub', [T, g.int64([1], [])])], { axis: 1 }); // [B, C]
  const final = rmsNorm(g, last, normW, s.rmsEps);
  const logits = linear.head(final, headData, s.hidden, s.vocabSize);
  g.op('Identity', [logits], {}, 'logits');
  g.output('logits', ElemType.FLOAT, ['batch_size', s.vocabSize]);
  return g;
}

function graphInputs(g: OnnxGraphBuilder, s: LlamaShape, engine: boolean) {
  const inputIds = g.input('input_ids', ElemType.INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', ElemType.INT64, ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', ElemType.INT64, ['batch_size', 'sequence_length']);
  const pastName = engine ? 'cache' : 'past_key_values';
  const dims = ['batch_size', s.nKvHead, 'past_sequence_length', s.headDim];
  const past = Array.from({ length: s.nLayer }, (_, i) => ({
    key: g.input(`${pastName}.${i}.key`, ElemType.FLOAT, dims),
    value: g.input(`${pastName}.${i}.value`, ElemType.FLOAT, dims),
  }));
  return { inputIds, attentionMask, positionIds, past };
}

/** The linear layers in the graph's form: one product per group of layers that read the same input. */
interface LinearLayers {
  /**
   * x · [W₁ᵀ | W₂ᵀ | …] for weights of Hugging Face shape [outₖ, K]; one output per weight. The engine concatenates
   * a group into one product (q, k and v; gate and up), the standard export keeps each weight under its own name.
   */
  project(x: string, names: string[], outs: number[], K: number): string[];
  /** The engine's LM head: x [B, K] · Wᵀ for W [N, K]. */
  head(x: string, w: Float32Array, K: number, N: number): string;
  /** Wᵀ of a named [out, in] weight, folded by ONNX Runtime at load. */
  transposed(name: string, shape: number[], data: Float32Array): string;
}

function linearLayers(
  g: OnnxGraphBuilder,
  weights: LlamaWeightSource,
  engine: boolean,
  precision: WeightPrecision,
): LinearLayers {
  const int8 = precision === 'int8';
  const transposed = (name: string, shape: number[], data: Float32Array) =>
    g.op('Transpose', [g.weight(name, shape, data)], { perm: [1, 0] });
  return {
    transposed,
    project(x, names, outs, K) {
      if (!engine)
        return names.map((n, k) => g.op('MatMul', [x, transposed(n, [outs[k], K], weights(n, [outs[k], K]))]));
      const N = outs.reduce((a, b) => a + b, 0);
      const ws = names.map((n, k) => weights(n, [outs[k], K]));
      const name = names.length === 1 ? names[0] : names[0].replace(/[^.]+$/, `fused_${names.length}`);
      const y = int8
        ? blockwiseInt8MatMul(g, x, name, stackRows(ws), N, K)
        : g.op('MatMul', [x, g.weight(`${name}.T`, [K, N], columnsOf(ws, outs, K))]);
      return names.length === 1 ? [y] : g.opN('Split', [y, g.int64(outs)], names.length, { axis: -1 });
    },
    head(x, w, K, N) {
      if (int8) return blockwiseInt8MatMul(g, x, 'lm_head', w, N, K);
      return g.op('MatMul', [x, g.weight('lm_head.T', [K, N], columnsOf([w], [N], K))]);
    },
  };
}

/** The weight source with the query projection (weight and bias) multiplied by `scale`. */
function scaledQueries(weights: LlamaWeightSource, scale: number): LlamaWeightSource {
  return (name, shape) => {
    const w = weights(name, shape);
    return /\.self_attn\.q_proj\./.test(name) ? w.map((x) => x * scale) : w;
  };
}

/** cos and sin of each position's angles, [B, 1, T, D] each, in the rotate-half layout (the halves repeat). */
function rotaryTables(g: OnnxGraphBuilder, s: LlamaShape, positionIds: string) {
  const half = s.headDim / 2;
  const invFreq = Float32Array.from({ length: half }, (_, j) => 1 / s.ropeTheta ** ((2 * j) / s.headDim));
  const pos = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: ElemType.FLOAT }), g.int64([2])]); // [B, T, 1]
  const freqs = g.op('Mul', [pos, g.weight('rope.inv_freq', [half], invFreq)]); // [B, T, D/2]
  const angles = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], { axis: -1 }), g.int64([1])]); // [B, 1, T, D]
  return {
    form: 'nodes' as const,
    cos: g.op('Cos', [angles]),
    sin: g.op('Sin', [angles]),
    halves: g.int64([half, half]),
  };
}

/**
 * cos and sin of every position's angles up to the window, [window, D/2], for the fused `RotaryEmbedding`: computed as
 * {@link rotaryTables} computes them in float32 (the angle is the float32 product of position and frequency), so
 * the engine's rotation matches the standard graph's.
 */
function rotaryCache(g: OnnxGraphBuilder, s: LlamaShape, positionIds: string) {
  const half = s.headDim / 2;
  const invFreq = Float32Array.from({ length: half }, (_, j) => 1 / s.ropeTheta ** ((2 * j) / s.headDim));
  const cos = new Float32Array(s.window * half);
  const sin = new Float32Array(s.window * half);
  for (let p = 0; p < s.window; p++)
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(p * invFreq[j]);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  return {
    form: 'fused' as const,
    positionIds,
    cosCache: g.weight('rope.cos_cache', [s.window, half], cos),
    sinCache: g.weight('rope.sin_cache', [s.window, half], sin),
  };
}

/** RMSNorm in the form ONNX Runtime fuses into one kernel: x / √(mean(x²) + ε) · w. */
function rmsNorm(g: OnnxGraphBuilder, x: string, weight: string, eps: number): string {
  const meanSquare = g.op('ReduceMean', [g.op('Pow', [x, g.float(2)])], { axes: [-1], keepdims: 1 });
  const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.float(eps)])]);
  return g.op('Mul', [g.op('Div', [x, rms]), weight]);
}

/** One pre-norm block: x + attention(norm(x)), then + mlp(norm(·)). */
function block(
  g: OnnxGraphBuilder,
  s: LlamaShape,
  weights: LlamaWeightSource,
  linear: LinearLayers,
  i: number,
  x: string,
  past: { key: string; value: string },
  a: LlamaAttentionInputs,
): string {
  const name = (suffix: string) => `model.layers.${i}.${suffix}`;
  const norm = (suffix: string) => g.weight(name(suffix), [s.hidden], weights(name(suffix), [s.hidden]));
  const C = s.hidden;
  const qDim = s.nHead * s.headDim;
  const kvDim = s.nKvHead * s.headDim;
  const h = rmsNorm(g, x, norm('input_layernorm.weight'), s.rmsEps);
  let [q, k, v] = linear.project(
    h,
    ['q_proj', 'k_proj', 'v_proj'].map((p) => name(`self_attn.${p}.weight`)),
    [qDim, kvDim, kvDim],
    C,
  );
  if (s.attentionBias) {
    const bias = (p: string, n: number) =>
      g.weight(name(`self_attn.${p}.bias`), [n], weights(name(`self_attn.${p}.bias`), [n]));
    [q, k, v] = [
      g.op('Add', [q, bias('q_proj', qDim)]),
      g.op('Add', [k, bias('k_proj', kvDim)]),
      g.op('Add', [v, bias('v_proj', kvDim)]),
    ];
  }
  const context = llamaAttention(g, a, i, q, k, v, past); // [B, T, H·D]
  const [attnOut] = linear.project(context, [name('self_attn.o_proj.weight')], [C], qDim);
  const mid = g.op('Add', [x, attnOut]);
  const h2 = rmsNorm(g, mid, norm('post_attention_layernorm.weight'), s.rmsEps);
  // Two products rather than one split in two: splitting [rows, 2·intermediate] copies it, which cost more in a
  // prefill than the wider product saves.
  const [gate] = linear.project(h2, [name('mlp.gate_proj.weight')], [s.intermediate], C);
  const [up] = linear.project(h2, [name('mlp.up_proj.weight')], [s.intermediate], C);
  const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]); // SwiGLU: silu(gate) · up
  const [down] = linear.project(act, [name('mlp.down_proj.weight')], [C], s.intermediate);
  return g.op('Add', [mid, down]);
}
