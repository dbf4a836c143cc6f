import { ElemType, type OnnxGraphBuilder } from './onnx-graph-builder.js';

/**
 * GPT-2's attention as ONNX: the standard export's (present = past ⧺ new), the engine's (the cache read in place), and
 * the additive bias both use. Shapes: B = batch, T = new tokens, P = past length, S = P + T, H = heads, D = head size.
 */

/** A layer's keys and values, as graph tensors. */
export type Kv = { key: string; value: string };

/** Standard attention: present = past ⧺ new (an output), attention over it. */
export function concatAttention(
  g: OnnxGraphBuilder,
  i: number,
  q: string,
  k: string,
  v: string,
  past: Kv,
  bias: string,
  scale: string,
  [H, D]: number[],
): string {
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
export function cacheAttention(
  g: OnnxGraphBuilder,
  i: number,
  q: string,
  k: string,
  v: string,
  cache: Kv,
  bias: string,
  scale: string,
  [H, D]: number[],
): string {
  g.op('Identity', [k], {}, `new.${i}.key`);
  g.op('Identity', [v], {}, `new.${i}.value`);
  g.output(`new.${i}.key`, ElemType.FLOAT, ['batch_size', H, 'sequence_length', D]);
  g.output(`new.${i}.value`, ElemType.FLOAT, ['batch_size', H, 'sequence_length', D]);
  const t = (x: string) => g.op('Transpose', [x], { perm: [0, 1, 3, 2] });
  const pastLen = g.op('Gather', [g.op('Shape', [cache.key]), g.int64([2])], { axis: 0 }); // [1] = P
  const out = { elemType: ElemType.FLOAT, dims: ['batch_size', H, 'sequence_length', D] };
  const prefill = g.branch(
    `prefill_${i}`,
    () => {
      const probs = g.op('Softmax', [g.op('Add', [g.op('Mul', [g.op('MatMul', [q, t(k)]), scale]), bias])], {
        axis: -1,
      }); // [B, H, T, T]
      return g.op('MatMul', [probs, v]); // [B, H, T, D]
    },
    out,
  );
  const decode = g.branch(
    `decode_${i}`,
    () => {
      const pastScores = g.op('MatMul', [q, t(cache.key)]); // [B, H, T, P]
      const newScores = g.op('MatMul', [q, t(k)]); // [B, H, T, T]
      const scores = g.op('Add', [g.op('Mul', [g.op('Concat', [pastScores, newScores], { axis: 3 }), scale]), bias]); // [B, H, T, P + T]
      const probs = g.op('Softmax', [scores], { axis: -1 });
      const axis = g.int64([3]);
      const pastProbs = g.op('Slice', [probs, g.int64([0]), pastLen, axis]); // [B, H, T, P]
      const newProbs = g.op('Slice', [probs, pastLen, g.int64([Number.MAX_SAFE_INTEGER]), axis]); // [B, H, T, T]
      return g.op('Add', [g.op('MatMul', [pastProbs, cache.value]), g.op('MatMul', [newProbs, v])]); // [B, H, T, D]
    },
    out,
  );
  return g.op('If', [g.op('Equal', [pastLen, g.int64([0])])], {
    then_branch: { graph: prefill },
    else_branch: { graph: decode },
  }); // [B, H, T, D]
}
