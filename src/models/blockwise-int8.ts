import type { OnnxGraphBuilder } from './onnx-graph-builder.js';

/** Weights per quantization block along the reduction (llama.cpp's Q8_0 uses 32 too). */
export const INT8_BLOCK = 32;

/**
 * x · Wᵀ for W [N, K] (Hugging Face's [out, in]) in int8 blocks, as ONNX Runtime's `MatMulNBits` (bits 8) runs them:
 * each output column's weights are quantized in blocks of {@link INT8_BLOCK} along K, one scale per block
 * (q = round(w / s) + 128, s = max|w| / 127), and with `accuracy_level` 4 the activations are quantized on the fly in
 * blocks of the same size, per row, and the products summed in integers: llama.cpp's Q8_0 × Q8_0. A row's result
 * depends on that row only, so batched output still equals unbatched; and an outlier channel (Llama-family models
 * have a few, a hundred times the rest) costs precision in its own block of 32, not in the whole row as a per-token
 * scale would. x: [..., K] → [..., N].
 */
export function blockwiseInt8MatMul(
  g: OnnxGraphBuilder,
  x: string,
  name: string,
  w: Float32Array,
  N: number,
  K: number,
): string {
  if (K % INT8_BLOCK !== 0) throw new Error(`${name}: K = ${K} is not a multiple of ${INT8_BLOCK}`);
  const blocks = K / INT8_BLOCK;
  const q = new Uint8Array(N * K);
  const scales = new Float32Array(N * blocks);
  for (let b = 0; b < N * blocks; b++) {
    const from = b * INT8_BLOCK;
    let max = 0;
    for (let j = 0; j < INT8_BLOCK; j++) max = Math.max(max, Math.abs(w[from + j]));
    const scale = max > 0 ? max / 127 : 1;
    scales[b] = scale;
    for (let j = 0; j < INT8_BLOCK; j++) q[from + j] = Math.round(w[from + j] / scale) + 128;
  }
  const weight = g.uint8Weight(`${name}.q8`, [N, blocks, INT8_BLOCK], q);
  const scale = g.weight(`${name}.q8.scales`, [N * blocks], scales);
  const attrs = { K, N, bits: 8, block_size: INT8_BLOCK, accuracy_level: 4 };
  return g.opN('MatMulNBits', [x, weight, scale], 1, attrs, undefined, 'com.microsoft')[0];
}

/** The rows of several [Nₖ, K] weights stacked into one [ΣNₖ, K] array. */
export function stackRows(ws: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(ws.reduce((a, w) => a + w.length, 0));
  let at = 0;
  for (const w of ws) {
    out.set(w, at);
    at += w.length;
  }
  return out;
}
