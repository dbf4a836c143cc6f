import { OnnxSession, type HostTensor } from '../../src/inference/onnx-session.js';

/** Shape facts of a GPT-2 graph needed to build empty caches. */
export interface Gpt2Shape {
  nLayer: number;
  nHead: number;
  headDim: number;
  vocab: number;
}

const i64 = (values: number[], dims: number[]): HostTensor => ({
  type: 'int64',
  data: BigInt64Array.from(values.map(BigInt)),
  dims,
});

/**
 * Runs the raw GPT-2 graph once. `ids[b]` are the new tokens of row b (all rows the same length), `mask[b]` covers
 * past + new, `past` holds `past_key_values.*` (empty when undefined). Returns logits and present tensors.
 */
export async function runGpt2(
  session: OnnxSession,
  shape: Gpt2Shape,
  ids: number[][],
  mask: number[][],
  positions: number[][],
  past?: Record<string, HostTensor>,
) {
  const B = ids.length;
  const T = ids[0].length;
  const feeds: Record<string, HostTensor> = {
    input_ids: i64(ids.flat(), [B, T]),
    attention_mask: i64(mask.flat(), [B, mask[0].length]),
    position_ids: i64(positions.flat(), [B, T]),
  };
  for (let i = 0; i < shape.nLayer; i++) {
    for (const kind of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kind}`] = past?.[`present.${i}.${kind}`] ?? {
        type: 'float32',
        data: new Float32Array(0),
        dims: [B, shape.nHead, 0, shape.headDim],
      };
    }
  }
  return session.run(feeds);
}

/** Logits of row b at position t from a [B, T, V] logits tensor. */
export function logitsAt(logits: HostTensor, b: number, t: number): Float32Array {
  const [, T, V] = logits.dims;
  const start = (b * T + t) * V;
  return (logits.data as Float32Array).subarray(start, start + V);
}

/** Largest absolute difference between two vectors. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
