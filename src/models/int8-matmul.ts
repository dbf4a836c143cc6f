import { ElemType, type OnnxGraphBuilder } from './onnx-graph-builder.js';

/** A [K, N] weight quantized per output column: int8 values and one float scale per column. */
export interface Int8Columns {
  values: Int8Array;
  scales: Float32Array;
}

/**
 * How the int8 products are handed to ONNX Runtime. Both carry activations as uint8 around zero point 128 and the
 * same weight integers q in [−127, 127], so both give the same exact integer sums and the same logits; they differ in
 * which of ONNX Runtime's integer GEMM kernels runs.
 * - `u8s8`: weights as int8. Fast, and exact where the CPU has a non-saturating u8·s8 dot product (x86 with AVX-512
 *   VNNI or AVX-VNNI, ARM). On x86 without VNNI the kernel adds pairs of u8·s8 products in saturating int16
 *   (`vpmaddubsw`): pairs reach 2·255·127 = 64,770 against 32,767, and the sums clip.
 * - `u8u8`: weights as uint8 q + 128 with zero point 128. The kernels widen both operands to 16 bits before they
 *   multiply, so the sums are exact on every CPU.
 */
export type Int8Formulation = 'u8s8' | 'u8u8';

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
 * Adds a quantized [K, N] weight in the form `formulation` needs; returns its name and its zero point ('' for none).
 */
export function int8WeightInitializer(
  g: OnnxGraphBuilder,
  name: string,
  dims: [number, number],
  values: Int8Array,
  formulation: Int8Formulation,
): { weight: string; zeroPoint: string } {
  if (formulation === 'u8s8') return { weight: g.int8Weight(`${name}.int8`, dims, values), zeroPoint: '' };
  const shifted = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) shifted[i] = values[i] + 128;
  return { weight: g.uint8Weight(`${name}.uint8`, dims, shifted), zeroPoint: g.uint8(128) };
}

/**
 * x · W with W in int8 and x quantized on the fly, one scale per row (per token): each token's activations are
 * scaled by their own largest magnitude, so a token's result never depends on the other tokens or sequences of its
 * batch (batched output stays equal to unbatched). x is carried as uint8 around zero point 128. Per-axis
 * QuantizeLinear scales, rounds, shifts and saturates in one pass over x; MatMulIntegerToFloat applies the column
 * scales in the GEMM; one multiply applies the rows'. `zeroPoints` is 128 for each of the R rows (uint8 [R], made
 * once per graph); `formulation` picks the integer kernel (see {@link Int8Formulation}). x: [R, K] → [R, N].
 */
export function int8MatMul(
  g: OnnxGraphBuilder,
  x: string,
  name: string,
  w: Int8Columns,
  K: number,
  N: number,
  zeroPoints: string,
  formulation: Int8Formulation,
): string {
  const { weight, zeroPoint } = int8WeightInitializer(g, name, [K, N], w.values, formulation);
  const columnScales = g.weight(`${name}.scales`, [N], w.scales);
  const peak = g.op('Max', [g.op('ReduceMax', [g.op('Abs', [x])], { axes: [1], keepdims: 0 }), g.float(1e-10)]); // [R]
  const rowScales = g.op('Mul', [peak, g.float(1 / 127)]); // [R]
  const xq = g.op('QuantizeLinear', [x, rowScales, zeroPoints], { axis: 0 }); // [R, K] uint8
  const inputs = [xq, weight, g.float(1), columnScales, g.uint8(128), ...(zeroPoint ? [zeroPoint] : [])];
  const [scaled] = g.opN('MatMulIntegerToFloat', inputs, 1, {}, undefined, 'com.microsoft'); // [R, N]
  return g.op('Mul', [scaled, g.op('Unsqueeze', [rowScales, g.int64([1])])]);
}

/**
 * x · W like {@link int8MatMul}, with each row's activations quantized over their own range, [min, max] stretched to
 * hold 0, rather than symmetrically around 0: a row of mostly positive values (after GELU) keeps twice the steps. Row r
 * is carried as round(x / s_r) + z_r in uint8; ONNX Runtime's float GEMM takes one zero point for all rows, so the
 * GEMM runs with none and z_r · Σ_k q[k, n] (the weight's column sums, made once here) is taken off after it. Rows
 * are still quantized on their own, so a row's result never depends on the other rows. x: [R, K] → [R, N].
 */
export function int8MatMulAsymmetric(
  g: OnnxGraphBuilder,
  x: string,
  name: string,
  w: Int8Columns,
  K: number,
  N: number,
  formulation: Int8Formulation,
): string {
  const { weight, zeroPoint } = int8WeightInitializer(g, name, [K, N], w.values, formulation);
  const columnScales = g.weight(`${name}.scales`, [N], w.scales);
  const lo = g.op('Min', [g.op('ReduceMin', [x], { axes: [1], keepdims: 0 }), g.float(0)]); // [R]
  const hi = g.op('Max', [g.op('ReduceMax', [x], { axes: [1], keepdims: 0 }), g.float(0)]); // [R]
  const rowScales = g.op('Max', [g.op('Mul', [g.op('Sub', [hi, lo]), g.float(1 / 255)]), g.float(1e-10)]); // [R]
  const rowZeros = g.op(
    'Cast',
    [g.op('Clip', [g.op('Round', [g.op('Div', [g.op('Neg', [lo]), rowScales])]), g.float(0), g.float(255)])],
    { to: ElemType.UINT8 },
  ); // [R]
  const xq = g.op('QuantizeLinear', [x, rowScales, rowZeros], { axis: 0 }); // [R, K] uint8
  const [scaled] = g.opN(
    'MatMulIntegerToFloat',
    [xq, weight, g.float(1), columnScales, g.uint8(0), ...(zeroPoint ? [zeroPoint] : [])],
    1,
    {},
    undefined,
    'com.microsoft',
  ); // [R, N]
  const scaledSums = new Float32Array(N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scaledSums[n] += w.values[k * N + n];
  for (let n = 0; n < N; n++) scaledSums[n] *= w.scales[n];
  const zeroTerm = g.op('Mul', [
    g.op('Unsqueeze', [g.op('Cast', [rowZeros], { to: ElemType.FLOAT }), g.int64([1])]),
    g.weight(`${name}.sums`, [N], scaledSums),
  ]); // [R, N]
  return g.op('Mul', [g.op('Sub', [scaled, zeroTerm]), g.op('Unsqueeze', [rowScales, g.int64([1])])]);
}

/** uint8 128 for each of `rows` rows (a scalar int64 tensor): the zero points {@link int8MatMul} takes. */
export function rowZeroPoints(g: OnnxGraphBuilder, rows: string): string {
  return g.op('Expand', [g.uint8(128), g.op('Unsqueeze', [rows, g.int64([0])])]);
}
