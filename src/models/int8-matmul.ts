import type { OnnxGraphBuilder } from './onnx-graph-builder.js';
import { ElemType } from './onnx-graph-builder.js';

/** A [K, N] weight quantized per output column: int8 values and one float scale per column. */
export interface Int8Columns {
  values: Int8Array;
  scales: Float32Array;
}

/** Symmetric per-column int8 quantization of a row-major [K, N] weight: w ≈ q · scale[n], q in [−127, 127]. */
export function quantizeColumns(w: Float32Array, K: number, N: number): Int8Columns {
  const values = new Int8Array(K * N);
  const scales = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let max = 0;
    for (let k = 0; k < K; k++) max = Math.max(max, Math.abs(w[k * N + n]));
    const scale = max > 0 ? max / 127 : 1;
    scales[n] = scale;
    for (let k = 0; k < K; k++) values[k * N + n] = Math.round(w[k * N + n] / scale);
  }
  return { values, scales };
}

/**
 * x · W with W in int8 and x quantized on the fly, one scale per token (per row of the last axis): each token's
 * activations are scaled by their own largest magnitude, so a token's result never depends on the other tokens or
 * sequences of its batch (batched output stays equal to unbatched). x is carried as uint8 around zero point 128 so
 * that ONNX Runtime takes its u8·s8 integer GEMM; the result is scaled back by the column's scales in the same
 * kernel (MatMulIntegerToFloat) and then by the token's. x: [..., K] → [..., N].
 */
export function int8MatMul(g: OnnxGraphBuilder, x: string, name: string, w: Int8Columns, K: number, N: number): string {
  const weight = g.int8Weight(`${name}.int8`, [K, N], w.values);
  const columnScales = g.weight(`${name}.scales`, [N], w.scales);
  const peak = g.op('Max', [g.op('ReduceMax', [g.op('Abs', [x])], { axes: [-1], keepdims: 1 }), g.float(1e-10)]); // [..., 1]
  const tokenScales = g.op('Mul', [peak, g.float(1 / 127)]); // [..., 1]
  // x·127/peak lies in [−127, 127]; adding 128.5 and truncating (Cast) rounds it half up into [1, 255]: one pass
  // fewer than Round, then add.
  const xq = g.op('Cast', [g.op('Add', [g.op('Mul', [x, g.op('Div', [g.float(127), peak])]), g.float(128.5)])], { to: ElemType.UINT8 }); // [..., K]
  const [scaled] = g.opN('MatMulIntegerToFloat', [xq, weight, g.float(1), columnScales, g.uint8(128)], 1, {}, undefined, 'com.microsoft'); // [..., N]
  return g.op('Mul', [scaled, tokenScales]);
}
