import type { OnnxGraphBuilder } from './onnx-graph-builder.js';

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
 * x · W with W in int8 and x quantized on the fly, one scale per row (per token): each token's activations are
 * scaled by their own largest magnitude, so a token's result never depends on the other tokens or sequences of its
 * batch (batched output stays equal to unbatched). x is carried as uint8 around zero point 128 so that ONNX Runtime
 * takes its u8·s8 integer GEMM. Per-axis QuantizeLinear scales, rounds, shifts and saturates in one pass over x;
 * MatMulIntegerToFloat applies the column scales in the GEMM; one multiply applies the rows'. `zeroPoints` is 128 for
 * each of the R rows (uint8 [R], made once per graph). x: [R, K] → [R, N].
 */
export function int8MatMul(g: OnnxGraphBuilder, x: string, name: string, w: Int8Columns, K: number, N: number, zeroPoints: string): string {
  const weight = g.int8Weight(`${name}.int8`, [K, N], w.values);
  const columnScales = g.weight(`${name}.scales`, [N], w.scales);
  const peak = g.op('Max', [g.op('ReduceMax', [g.op('Abs', [x])], { axes: [1], keepdims: 0 }), g.float(1e-10)]); // [R]
  const rowScales = g.op('Mul', [peak, g.float(1 / 127)]); // [R]
  const xq = g.op('QuantizeLinear', [x, rowScales, zeroPoints], { axis: 0 }); // [R, K] uint8
  const [scaled] = g.opN('MatMulIntegerToFloat', [xq, weight, g.float(1), columnScales, g.uint8(128)], 1, {}, undefined, 'com.microsoft'); // [R, N]
  return g.op('Mul', [scaled, g.op('Unsqueeze', [rowScales, g.int64([1])])]);
}

/** uint8 128 for each of `rows` rows (a scalar int64 tensor): the zero points {@link int8MatMul} takes. */
export function rowZeroPoints(g: OnnxGraphBuilder, rows: string): string {
  return g.op('Expand', [g.uint8(128), g.op('Unsqueeze', [rows, g.int64([0])])]);
}
