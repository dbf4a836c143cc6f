import { ElemType, type OnnxGraphBuilder } from './onnx-graph-builder.js';
import type { LlamaShape } from './llama-shape.js';

/** What every layer's attention shares. */
export interface LlamaAttentionInputs {
  engine: boolean;
  /** Additive bias [B, 1, G·T, S] (0 where a query may see a key, large negative elsewhere). */
  bias: string;
  /**
   * Rotary position embeddings: the standard graph's cos and sin [B, 1, T, D] and the split sizes [D/2, D/2]; the
   * engine's position ids [B, T] and cos/sin tables [window, D/2] for ONNX Runtime's fused `RotaryEmbedding`.
   */
  rope:
    | { form: 'nodes'; cos: string; sin: string; halves: string }
    | { form: 'fused'; positionIds: string; cosCache: string; sinCache: string };
  /** The scores' scale 1/√D, or null when it is folded into the query projection (exact where it is a power of two). */
  scale: string | null;
  shape: LlamaShape;
}

/**
 * Grouped-query attention of layer i on projections q [B, T, H·D], k and v [B, T, Hkv·D]; returns [B, T, H·D].
 * The G query heads that share a key/value head are laid out as one [G·T, D] block ([B, Hkv, G·T, D]), so every
 * product reads each shared head once and no head is repeated in memory. Keys are rotated before they are cached.
 */
export function llamaAttention(
  g: OnnxGraphBuilder,
  a: LlamaAttentionInputs,
  i: number,
  q: string,
  k: string,
  v: string,
  past: { key: string; value: string },
): string {
  const { nHead: H, nKvHead: Hkv, headDim: D } = a.shape;
  // The engine names its new keys and values where they are made: an Identity to name them would copy them.
  const heads = (x: string, n: number, name?: string) =>
    g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, n, D])])], { perm: [0, 2, 1, 3] }, name); // [B, n, T, D]
  const rotatedHeads = (x: string, n: number, name?: string) =>
    a.rope.form === 'fused' ? heads(fusedRotate(g, x, n, a.rope), n, name) : rotate(g, heads(x, n), a.rope);
  const qGroups = g.op('Reshape', [rotatedHeads(q, H), g.int64([0, Hkv, -1, D])]); // [B, Hkv, G·T, D]
  const kNew = rotatedHeads(k, Hkv, a.engine ? `new.${i}.key` : undefined); // [B, Hkv, T, D]
  const vNew = heads(v, Hkv, a.engine ? `new.${i}.value` : undefined);
  const t = (x: string) => g.op('Transpose', [x], { perm: [0, 1, 3, 2] });
  const attend = (keys: string, values: string) => {
    const scores = g.op('Add', [scaled(g, g.op('MatMul', [qGroups, t(keys)]), a.scale), a.bias]);
    return g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), values]);
  };
  let context: string; // [B, Hkv, G·T, D]
  if (!a.engine) {
    const kAll = g.op('Concat', [past.key, kNew], { axis: 2 }, `present.${i}.key`);
    const vAll = g.op('Concat', [past.value, vNew], { axis: 2 }, `present.${i}.value`);
    g.output(kAll, ElemType.FLOAT, ['batch_size', Hkv, 'total_sequence_length', D]);
    g.output(vAll, ElemType.FLOAT, ['batch_size', Hkv, 'total_sequence_length', D]);
    context = attend(kAll, vAll);
  } else context = cacheAttention(g, a, i, qGroups, kNew, vNew, past);
  const merged = g.op('Reshape', [context, g.int64([0, H, -1, D])]); // [B, H, T, D]
  return g.op('Reshape', [g.op('Transpose', [merged], { perm: [0, 2, 1, 3] }), g.int64([0, 0, H * D])]);
}

type Rope = LlamaAttentionInputs['rope'];

const scaled = (g: OnnxGraphBuilder, scores: string, scale: string | null) =>
  scale === null ? scores : g.op('Mul', [scores, scale]);

/** x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁] over the two halves of each head of x [B, n, T, D]. */
function rotate(g: OnnxGraphBuilder, x: string, rope: Extract<Rope, { form: 'nodes' }>): string {
  const [x1, x2] = g.opN('Split', [x, rope.halves], 2, { axis: -1 });
  const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
  return g.op('Add', [g.op('Mul', [x, rope.cos]), g.op('Mul', [rotated, rope.sin])]);
}

/** The same rotation of the n heads of x [B, T, n·D] as one node: a dozen fewer nodes a layer. */
function fusedRotate(g: OnnxGraphBuilder, x: string, n: number, rope: Extract<Rope, { form: 'fused' }>): string {
  const inputs = [x, rope.positionIds, rope.cosCache, rope.sinCache];
  return g.opN('RotaryEmbedding', inputs, 1, { interleaved: 0, num_heads: n }, undefined, 'com.microsoft')[0];
}

/**
 * The engine's attention: the cache is read in place and only the score tensors are concatenated (as in GPT-2's
 * engine graph); prefill (an empty cache) takes a branch without the cache. The new keys and values are outputs.
 */
function cacheAttention(
  g: OnnxGraphBuilder,
  a: LlamaAttentionInputs,
  i: number,
  qGroups: string,
  k: string,
  v: string,
  cache: { key: string; value: string },
): string {
  const { nKvHead: Hkv, headDim: D } = a.shape;
  g.output(`new.${i}.key`, ElemType.FLOAT, ['batch_size', Hkv, 'sequence_length', D]);
  g.output(`new.${i}.value`, ElemType.FLOAT, ['batch_size', Hkv, 'sequence_length', D]);
  const t = (x: string) => g.op('Transpose', [x], { perm: [0, 1, 3, 2] });
  const pastLen = g.op('Gather', [g.op('Shape', [cache.key]), g.int64([2])], { axis: 0 }); // [1] = P
  const out = { elemType: ElemType.FLOAT, dims: ['batch_size', Hkv, 'group_rows', D] };
  const softmax = (scores: string) =>
    g.op('Softmax', [g.op('Add', [scaled(g, scores, a.scale), a.bias])], { axis: -1 });
  const prefill = g.branch(`prefill_${i}`, () => g.op('MatMul', [softmax(g.op('MatMul', [qGroups, t(k)])), v]), out);
  const decode = g.branch(
    `decode_${i}`,
    () => {
      const pastScores = g.op('MatMul', [qGroups, t(cache.key)]); // [B, Hkv, G·T, P]
      const newScores = g.op('MatMul', [qGroups, t(k)]); // [B, Hkv, G·T, T]
      const probs = softmax(g.op('Concat', [pastScores, newScores], { axis: 3 }));
      const axis = g.int64([3]);
      const pastProbs = g.op('Slice', [probs, g.int64([0]), pastLen, axis]);
      const newProbs = g.op('Slice', [probs, pastLen, g.int64([Number.MAX_SAFE_INTEGER]), axis]);
      return g.op('Add', [g.op('MatMul', [pastProbs, cache.value]), g.op('MatMul', [newProbs, v])]);
    },
    out,
  );
  return g.op('If', [g.op('Equal', [pastLen, g.int64([0])])], {
    then_branch: { graph: prefill },
    else_branch: { graph: decode },
  });
}
