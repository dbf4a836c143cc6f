import type { ModelPreset } from './presets.js';
import { ElemType, OnnxGraphBuilder } from './onnx-graph-builder.js';
import { int8MatMul, quantizeColumns, rowZeroPoints, type Int8Formulation } from './int8-matmul.js';
import { cacheAttention, concatAttention, type Kv } from './gpt2-attention.js';
import { attentionBias } from './attention-bias.js';
import { columnsOf } from './weight-columns.js';

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
export function buildGpt2Graph(
  p: ModelPreset,
  weights: WeightSource,
  mode: GraphMode = 'standard',
  precision: WeightPrecision = 'fp32',
  formulation: Int8Formulation = 'u8u8',
): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const engine = mode === 'engine';
  const inputs = graphInputs(g, p, engine);
  const { x: embedded, wte, wteData } = embeddings(g, p, weights, inputs);
  const C = p.nEmbd;
  const H = p.nHead;
  const attention: AttentionInputs = {
    engine,
    past: inputs.past,
    bias: attentionBias(g, inputs.inputIds, inputs.attentionMask), // [B, 1, T, S]
    scale: g.float(1 / Math.sqrt(C / H)),
    headsShape: g.int64([0, 0, H, C / H]),
    mergedShape: g.int64([0, 0, C]),
    splitSizes: g.int64([C, C, C]),
  };
  const b = buildContext(g, p, weights, precision, formulation, inputs.inputIds);
  let x = embedded; // [B, T, C]
  // The previous block's MLP output and bias, added to the residual stream together with the next LayerNorm.
  let pending: Residual | undefined;
  for (let i = 0; i < p.nLayer; i++) ({ x, pending } = block(b, i, x, pending, attention));
  if (pending) x = g.op('Add', [x, g.op('Add', [pending.proj, pending.bias])]);
  lmHead(b, x, inputs.inputIds, { wte, wteData }, engine);
  return g;
}

/** What every part of the graph is built with. */
interface BuildContext {
  g: OnnxGraphBuilder;
  p: ModelPreset;
  weights: WeightSource;
  precision: WeightPrecision;
  formulation: Int8Formulation;
  /** The input's shape [2] = B, T (int8 graphs only). */
  inputShape: string;
  /** A named weight, pulled from the source. */
  weight(name: string, shape: number[], kind: WeightKind): string;
  /** x · W for a [K, N] weight named `name`, in the graph's precision. */
  matmul(x: string, name: string, K: number, N: number, kind: WeightKind): string;
}

/** The graph's inputs: token ids, attention mask, positions, and each layer's past (or cache) keys and values. */
function graphInputs(g: OnnxGraphBuilder, p: ModelPreset, engine: boolean) {
  const H = p.nHead;
  const D = p.nEmbd / H;
  const inputIds = g.input('input_ids', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]
  const attentionMask = g.input('attention_mask', ElemType.INT64, ['batch_size', 'total_sequence_length']); // [B, S]
  const positionIds = g.input('position_ids', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]
  const pastName = engine ? 'cache' : 'past_key_values';
  const past: Kv[] = [];
  for (let i = 0; i < p.nLayer; i++) {
    past.push({
      key: g.input(`${pastName}.${i}.key`, ElemType.FLOAT, ['batch_size', H, 'past_sequence_length', D]),
      value: g.input(`${pastName}.${i}.value`, ElemType.FLOAT, ['batch_size', H, 'past_sequence_length', D]),
    });
  }
  return { inputIds, attentionMask, positionIds, past };
}

function buildContext(
  g: OnnxGraphBuilder,
  p: ModelPreset,
  weights: WeightSource,
  precision: WeightPrecision,
  formulation: Int8Formulation,
  inputIds: string,
): BuildContext {
  const int8 = precision !== 'fp32';
  // The int8 GEMMs take [B·T, K]; their results go back to [B, T, N] through shapes made once.
  const inputShape = int8 ? g.op('Shape', [inputIds]) : ''; // [2] = B, T
  const tokenZeroPoints = int8 ? rowZeroPoints(g, g.op('ReduceProd', [inputShape], { keepdims: 0 })) : '';
  const shapeWith = new Map<number, string>();
  const fromRows = (t: string, N: number) => {
    if (!shapeWith.has(N)) shapeWith.set(N, g.op('Concat', [inputShape, g.int64([N])], { axis: 0 }));
    return g.op('Reshape', [t, shapeWith.get(N)!]);
  };
  const weight = (name: string, shape: number[], kind: WeightKind) => g.weight(name, shape, weights(name, shape, kind));
  return {
    g,
    p,
    weights,
    precision,
    formulation,
    inputShape,
    weight,
    matmul: (x, name, K, N, kind) => {
      if (!int8) return g.op('MatMul', [x, weight(name, [K, N], kind)]);
      const rows = g.op('Reshape', [x, g.int64([-1, K])]);
      const columns = quantizeColumns(weights(name, [K, N], kind), K, N);
      return fromRows(int8MatMul(g, rows, name, columns, K, N, tokenZeroPoints, formulation), N);
    },
  };
}

/** Token plus learned position embeddings: [B, T, C]; the token table is returned for the tied LM head. */
function embeddings(
  g: OnnxGraphBuilder,
  p: ModelPreset,
  weights: WeightSource,
  { inputIds, positionIds }: { inputIds: string; positionIds: string },
) {
  const C = p.nEmbd;
  const wteData = weights('transformer.wte.weight', [p.vocabSize, C], 'embedding');
  const wte = g.weight('transformer.wte.weight', [p.vocabSize, C], wteData);
  const wpe = g.weight(
    'transformer.wpe.weight',
    [p.nPositions, C],
    weights('transformer.wpe.weight', [p.nPositions, C], 'embedding'),
  );
  const x = g.op('Add', [
    g.op('Gather', [wte, inputIds], { axis: 0 }),
    g.op('Gather', [wpe, positionIds], { axis: 0 }),
  ]);
  return { x, wte, wteData };
}

/** What every layer's attention reads besides its own weights. */
interface AttentionInputs {
  engine: boolean;
  past: Kv[];
  /** [B, 1, T, S] */
  bias: string;
  scale: string;
  /** [0, 0, H, D], [0, 0, C] and [C, C, C]: the reshapes and split every layer shares. */
  headsShape: string;
  mergedShape: string;
  splitSizes: string;
}

/**
 * One transformer block (pre-LayerNorm): attention, then the MLP. The MLP's output is returned as the pending
 * residual, which the next block (or the final sum) adds together with its LayerNorm.
 */
function block(b: BuildContext, i: number, x: string, pending: Residual | undefined, a: AttentionInputs) {
  const { g, p } = b;
  const C = p.nEmbd;
  const H = p.nHead;
  const D = C / H;
  const int8 = b.precision !== 'fp32';
  const name = (suffix: string) => `transformer.h.${i}.${suffix}`;
  const w = (suffix: string, shape: number[], kind: WeightKind) => b.weight(name(suffix), shape, kind);
  const ln1 = [w('ln_1.weight', [C], 'ln-gain'), w('ln_1.bias', [C], 'ln-bias')] as const;
  let h1: string;
  if (pending) ({ x, normed: h1 } = residualNorm(g, x, pending, ln1, int8));
  else h1 = layerNorm(g, x, ...ln1);
  const qkvProj = b.matmul(h1, name('attn.c_attn.weight'), C, 3 * C, 'linear');
  const qkv = g.op('Add', [qkvProj, w('attn.c_attn.bias', [3 * C], 'bias')]); // [B, T, 3C]
  const [q, k, v] = g.opN('Split', [qkv, a.splitSizes], 3, { axis: 2 }).map(
    (t) => g.op('Transpose', [g.op('Reshape', [t, a.headsShape])], { perm: [0, 2, 1, 3] }), // [B, H, T, D]
  );
  const attend = a.engine ? cacheAttention : concatAttention;
  const ctx = attend(g, i, q, k, v, a.past[i], a.bias, a.scale, [H, D]); // [B, H, T, D]
  const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), a.mergedShape]); // [B, T, C]
  const attnOut = {
    proj: b.matmul(merged, name('attn.c_proj.weight'), C, C, 'residual-linear'),
    bias: w('attn.c_proj.bias', [C], 'bias'),
  };
  let h2: string;
  const ln2 = [w('ln_2.weight', [C], 'ln-gain'), w('ln_2.bias', [C], 'ln-bias')] as const;
  ({ x, normed: h2 } = residualNorm(g, x, attnOut, ln2, int8));
  const fc = b.matmul(h2, name('mlp.c_fc.weight'), C, 4 * C, 'linear'); // [B, T, 4C]
  const fcBias = w('mlp.c_fc.bias', [4 * C], 'bias');
  // The int8 graph adds the bias and applies GELU in one kernel, ONNX Runtime's FastGelu (the same tanh formula); the
  // float32 graph keeps the standard operators, whose output equals transformers.js's token for token.
  const gelu = int8
    ? g.opN('FastGelu', [fc, fcBias], 1, {}, undefined, 'com.microsoft')[0]
    : geluTanh(g, g.op('Add', [fc, fcBias]));
  const mlpOut = {
    proj: b.matmul(gelu, name('mlp.c_proj.weight'), 4 * C, C, 'residual-linear'),
    bias: w('mlp.c_proj.bias', [C], 'bias'),
  };
  return { x, pending: mlpOut };
}

/**
 * The final LayerNorm and the LM head, tied to the token embedding: logits = final · wteᵀ (ORT folds the constant
 * transpose once at load). The engine needs the last position's logits only [B, V]; the standard export every
 * position's [B, T, V].
 */
function lmHead(
  b: BuildContext,
  x: string,
  inputIds: string,
  tied: { wte: string; wteData: Float32Array },
  engine: boolean,
): void {
  const { g, p } = b;
  const C = p.nEmbd;
  const lnf = b.weight('transformer.ln_f.weight', [C], 'ln-gain');
  const lnfB = b.weight('transformer.ln_f.bias', [C], 'ln-bias');
  const wteT = () => g.op('Transpose', [tied.wte], { perm: [1, 0] }); // [C, V]
  if (!engine) {
    g.op('MatMul', [layerNorm(g, x, lnf, lnfB), wteT()], {}, 'logits'); // [B, T, V]
    g.output('logits', ElemType.FLOAT, ['batch_size', 'sequence_length', p.vocabSize]);
    return;
  }
  // Only the last position needs a next token; with left padding it is the same index T - 1 in every row.
  const T = g.op('Gather', [g.op('Shape', [inputIds]), g.int64([1], [])], { axis: 0 });
  const lastIndex = g.op('Sub', [T, g.int64([1], [])]);
  const final = layerNorm(g, g.op('Gather', [x, lastIndex], { axis: 1 }), lnf, lnfB); // [B, C]
  if (b.precision === 'fp32')
    g.op('MatMul', [final, wteT()], {}, 'logits'); // [B, V]
  else {
    const batchZeroPoints = rowZeroPoints(g, g.op('Gather', [b.inputShape, g.int64([0], [])], { axis: 0 }));
    const columns = quantizeColumns(columnsOf([tied.wteData], [p.vocabSize], C), C, p.vocabSize);
    const product = int8MatMul(g, final, 'lm_head', columns, C, p.vocabSize, batchZeroPoints, b.formulation);
    g.op('Identity', [product], {}, 'logits'); // [B, V]
  }
  g.output('logits', ElemType.FLOAT, ['batch_size', p.vocabSize]);
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
function residualNorm(
  g: OnnxGraphBuilder,
  x: string,
  r: Residual,
  [gain, beta]: readonly [string, string],
  fused: boolean,
): { x: string; normed: string } {
  if (!fused) {
    const sum = g.op('Add', [x, g.op('Add', [r.proj, r.bias])]);
    return { x: sum, normed: layerNorm(g, sum, gain, beta) };
  }
  const id = g.opN(
    'SkipLayerNormalization',
    [r.proj, x, gain, beta, r.bias],
    4,
    { epsilon: 1e-5 },
    undefined,
    'com.microsoft',
  );
  return { x: id[3], normed: id[0] };
}

function layerNorm(g: OnnxGraphBuilder, x: string, gain: string, bias: string): string {
  return g.op('LayerNormalization', [x, gain, bias], { axis: -1, epsilon: 1e-5 });
}

/** GPT-2's GELU (tanh approximation): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function geluTanh(g: OnnxGraphBuilder, x: string): string {
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [
    g.op('Add', [x, g.op('Mul', [cube, g.float(0.044715)])]),
    g.float(Math.sqrt(2 / Math.PI)),
  ]);
  const tanh = g.op('Tanh', [inner]);
  return g.op('Mul', [g.op('Mul', [x, g.float(0.5)]), g.op('Add', [tanh, g.float(1)])]);
}
