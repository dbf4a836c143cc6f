import { int8MatMulAsymmetric, quantizeColumns, type Int8Formulation } from './int8-matmul.js';
import { ElemType, OnnxGraphBuilder } from './onnx-graph-builder.js';

/**
 * A BERT sentence encoder as an ONNX graph of standard operators (opset 17), bottom-up: embeddings, post-LayerNorm
 * encoder blocks, then sentence-transformers' mean pooling and L2 normalisation.
 *
 * Inputs: `input_ids`, `attention_mask`, `token_type_ids` [B, T]. Outputs: `last_hidden_state` [B, T, C] (what
 * transformers.js's feature-extraction pipeline pools itself) and `sentence_embedding` [B, C], pooled over the
 * attended tokens and normalised. Shapes: B = batch, T = tokens, H = heads, D = head size, C = H·D, F = the
 * feed-forward width.
 *
 * In int8, the six linear layers of each block take int8 weights per output column and uint8 activations per token,
 * over each token's own range (see `int8MatMulAsymmetric`, in the CPU's exact formulation); embeddings, attention
 * scores, LayerNorm and pooling stay float32. Each token is quantized on its own, so padding never changes another
 * token's result.
 */

/** The architecture numbers of a BERT `config.json`. */
export interface BertShape {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  /** How token states become the sentence embedding: their mean over attended tokens, or the first ([CLS]) token's. */
  pooling: 'mean' | 'cls';
}

/** Supplies a weight by its Hugging Face name (PyTorch layout: a linear layer's weight is [out, in]). */
export type BertWeights = (name: string, shape: number[]) => Float32Array;

/** ONNX opset of the graph (LayerNormalization needs 17). */
export const BERT_OPSET = 17;

/** The linear layers' precision; int8 in the integer formulation exact on the CPU that will run it. */
export type BertPrecision = { precision: 'fp32' } | { precision: 'int8'; formulation: Int8Formulation };

/** Builds the encoder, pulling each weight from `weights`. */
export function buildBertGraph(
  s: BertShape,
  weights: BertWeights,
  numerics: BertPrecision = { precision: 'fp32' },
): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const C = s.hiddenSize;
  const H = s.numHeads;
  const D = C / H;
  const F = s.intermediateSize;
  const w = (name: string, shape: number[]) => g.weight(name, shape, weights(name, shape));
  const inputIds = g.input('input_ids', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]
  const attentionMask = g.input('attention_mask', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]
  const tokenTypes = g.input('token_type_ids', ElemType.INT64, ['batch_size', 'sequence_length']); // [B, T]

  // The int8 GEMMs take [B·T, K] and give [B·T, N], reshaped back to [B, T, N] by shapes made once.
  const inputShape = g.op('Shape', [inputIds]); // [2] = B, T
  const shapes = new Map<number, string>();
  const shapeWith = (N: number) => {
    if (!shapes.has(N)) shapes.set(N, g.op('Concat', [inputShape, g.int64([N])], { axis: 0 }));
    return shapes.get(N)!;
  };
  /** A linear layer x·Wᵀ + b; the transpose (and in int8 the quantization) is done once here, not in the graph. */
  const linear = (x: string, prefix: string, inDim: number, outDim: number) => {
    const wT = transpose(weights(`${prefix}.weight`, [outDim, inDim]), outDim, inDim); // [in, out]
    const bias = w(`${prefix}.bias`, [outDim]);
    if (numerics.precision === 'fp32')
      return g.op('Add', [g.op('MatMul', [x, g.weight(`${prefix}.weight.T`, [inDim, outDim], wT)]), bias]);
    const flat = g.op('Reshape', [x, g.int64([-1, inDim])]); // [B·T, in]
    const product = int8MatMulAsymmetric(
      g,
      flat,
      `${prefix}.weight.T`,
      quantizeColumns(wT, inDim, outDim),
      inDim,
      outDim,
      numerics.formulation,
    ); // [B·T, out]
    return g.op('Add', [g.op('Reshape', [product, shapeWith(outDim)]), bias]); // [B, T, out]
  };
  const layerNorm = (x: string, prefix: string) =>
    g.op('LayerNormalization', [x, w(`${prefix}.weight`, [C]), w(`${prefix}.bias`, [C])], {
      axis: -1,
      epsilon: s.layerNormEps,
    });

  // Embeddings: token + absolute position + token type, then LayerNorm.
  const T = g.op('Gather', [inputShape, g.int64([1], [])], { axis: 0 }); // scalar T
  const positions = g.op('Range', [g.int64([0], []), T, g.int64([1], [])]); // [T]
  const words = g.op('Gather', [w('embeddings.word_embeddings.weight', [s.vocabSize, C]), inputIds], { axis: 0 }); // [B, T, C]
  const where = g.op('Gather', [w('embeddings.position_embeddings.weight', [s.maxPositions, C]), positions], {
    axis: 0,
  }); // [T, C]
  const types = g.op('Gather', [w('embeddings.token_type_embeddings.weight', [s.typeVocabSize, C]), tokenTypes], {
    axis: 0,
  }); // [B, T, C]
  let x = layerNorm(g.op('Add', [g.op('Add', [words, where]), types]), 'embeddings.LayerNorm'); // [B, T, C]

  // Padding keys get a large negative score: [B, 1, 1, T].
  const keep = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: ElemType.BOOL }), g.int64([1, 2])]);
  const bias = g.op('Where', [keep, g.float(0), g.float(-1e9)]);
  const scale = g.float(1 / Math.sqrt(D));
  const headsShape = g.int64([0, 0, H, D]);
  const mergedShape = g.int64([0, 0, C]);

  for (let i = 0; i < s.numLayers; i++) {
    const p = `encoder.layer.${i}`;
    const heads = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, headsShape])], { perm });
    const q = heads(linear(x, `${p}.attention.self.query`, C, C), [0, 2, 1, 3]); // [B, H, T, D]
    const kT = heads(linear(x, `${p}.attention.self.key`, C, C), [0, 2, 3, 1]); // [B, H, D, T]
    const v = heads(linear(x, `${p}.attention.self.value`, C, C), [0, 2, 1, 3]); // [B, H, T, D]
    const probs = g.op('Softmax', [g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), scale]), bias])], { axis: -1 }); // [B, H, T, T]
    const ctx = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), mergedShape]); // [B, T, C]
    x = layerNorm(
      g.op('Add', [x, linear(ctx, `${p}.attention.output.dense`, C, C)]),
      `${p}.attention.output.LayerNorm`,
    );
    const ff = geluErf(g, linear(x, `${p}.intermediate.dense`, C, F)); // [B, T, F]
    x = layerNorm(g.op('Add', [x, linear(ff, `${p}.output.dense`, F, C)]), `${p}.output.LayerNorm`); // [B, T, C]
  }
  g.op('Identity', [x], {}, 'last_hidden_state');
  g.output('last_hidden_state', ElemType.FLOAT, ['batch_size', 'sequence_length', C]);

  sentenceEmbedding(g, x, attentionMask, s.pooling);
  g.output('sentence_embedding', ElemType.FLOAT, ['batch_size', C]);
  return g;
}

/**
 * The sentence embedding: the mean over the attended tokens or the [CLS] token's state, then unit length
 * (sentence-transformers' Pooling and Normalize modules).
 */
function sentenceEmbedding(g: OnnxGraphBuilder, x: string, attentionMask: string, pooling: 'mean' | 'cls'): void {
  const pooled = pooling === 'cls' ? clsState(g, x) : meanState(g, x, attentionMask); // [B, C]
  const norm = g.op('Max', [
    g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [pooled, pooled]), g.int64([1])], { keepdims: 1 })]),
    g.float(1e-12),
  ]); // [B, 1]
  g.op('Div', [pooled, norm], {}, 'sentence_embedding');
}

function meanState(g: OnnxGraphBuilder, x: string, attentionMask: string): string {
  const m = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: ElemType.FLOAT }), g.int64([2])]); // [B, T, 1]
  const axis1 = g.int64([1]);
  const summed = g.op('ReduceSum', [g.op('Mul', [x, m]), axis1], { keepdims: 0 }); // [B, C]
  const counted = g.op('Max', [g.op('ReduceSum', [m, axis1], { keepdims: 0 }), g.float(1e-9)]); // [B, 1]
  return g.op('Div', [summed, counted]);
}

/** The first token's state: tokenizers put [CLS] first and pad on the right. */
function clsState(g: OnnxGraphBuilder, x: string): string {
  return g.op('Gather', [x, g.int64([0], [])], { axis: 1 });
}

/** BERT's exact GELU: 0.5·x·(1 + erf(x / √2)). */
function geluErf(g: OnnxGraphBuilder, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.float(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.float(0.5)]), g.op('Add', [erf, g.float(1)])]);
}

/** A row-major [rows, cols] matrix transposed to [cols, rows]. */
export function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}
