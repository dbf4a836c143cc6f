import { GPT2_OPSET } from '../models/gpt2-graph.js';
import { int8WeightInitializer, type Int8Formulation } from '../models/int8-matmul.js';
import { ElemType, OnnxGraphBuilder } from '../models/onnx-graph-builder.js';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { OnnxSession } from './onnx-session.js';

/** The probe's depth: GPT-2 small's widest reduction (the MLP's 4·768), so every K-tiling path of the kernels runs. */
const PROBE_K = 3072;
/** Columns: two of the kernels' 16-wide blocks. */
const PROBE_N = 32;
/** Row counts run: one (the GEMV path of a one-sequence decode step), a small block, and a block and a remainder. */
const PROBE_ROWS = [1, 4, 17];

/** What a probe found: the largest difference from the exact integer product over every row count. */
export interface Int8ProbeResult {
  formulation: Int8Formulation;
  exact: boolean;
  worstError: number;
}

/**
 * The activations and weights the engine can produce at their worst: uint8 activations over [1, 255] around 128 (a
 * token's largest magnitude maps to 1 or 255) and weights over [−127, 127], in rows and columns of extremes, of
 * alternating signs, and seeded random values. Pairs of 255 · 127 are where a saturating kernel clips.
 */
export function probeOperands(): { a: Uint8Array; w: Int8Array; rows: number; K: number; N: number } {
  const rows = Math.max(...PROBE_ROWS);
  const K = PROBE_K;
  const N = PROBE_N;
  const rng = xoroshiro128plus(0x1e8);
  const random = () => uniformFloat64(rng);
  const a = new Uint8Array(rows * K);
  for (let m = 0; m < rows; m++) {
    for (let k = 0; k < K; k++) {
      const pattern = m % 4;
      a[m * K + k] =
        pattern === 0 ? 255 : pattern === 1 ? 1 : pattern === 2 ? (k % 2 ? 255 : 1) : 1 + Math.floor(random() * 255);
    }
  }
  const w = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const pattern = n % 4;
      w[k * N + n] =
        pattern === 0
          ? 127
          : pattern === 1
            ? -127
            : pattern === 2
              ? k % 2
                ? 127
                : -127
              : Math.round(random() * 254) - 127;
    }
  }
  return { a, w, rows, K, N };
}

/** Σₖ (a[m,k] − 128) · w[k,n], exactly (the sums stay far below 2⁵³). */
export function exactProduct(a: Uint8Array, w: Int8Array, M: number, K: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += (a[m * K + k] - 128) * w[k * N + n];
      out[m * N + n] = sum;
    }
  }
  return out;
}

/**
 * Runs ONNX Runtime's MatMulInteger on {@link probeOperands} with the weight laid out as `formulation` lays it out
 * (a constant initializer, pre-packed as the engine's are) and compares every output with the exact product, on the
 * CPU this process runs on. The same integer kernels serve the engine's MatMulIntegerToFloat.
 */
export async function probeInt8Formulation(formulation: Int8Formulation, intraOpThreads = 1): Promise<Int8ProbeResult> {
  const { a, w, rows, K, N } = probeOperands();
  // Every row count reads the first rows of the same operands, so one exact product serves them all.
  const want = exactProduct(a, w, rows, K, N);
  const g = new OnnxGraphBuilder();
  const x = g.input('a', ElemType.UINT8, ['rows', K]);
  const { weight, zeroPoint } = int8WeightInitializer(g, 'w', [K, N], w, formulation);
  g.op('MatMulInteger', [x, weight, g.uint8(128), ...(zeroPoint ? [zeroPoint] : [])], {}, 'y');
  g.output('y', ElemType.INT32, ['rows', N]);
  const session = await OnnxSession.open(
    g.encode({ opset: GPT2_OPSET, producer: 'ava-int8-probe', graphName: 'int8-probe' }),
    { intraOpThreads },
  );
  let worstError = 0;
  try {
    for (const M of PROBE_ROWS) {
      const { y } = await session.run({ a: { type: 'uint8', data: a.subarray(0, M * K), dims: [M, K] } }, ['y']);
      for (let i = 0; i < M * N; i++) worstError = Math.max(worstError, Math.abs((y.data[i] as number) - want[i]));
    }
  } finally {
    await session.close();
  }
  return { formulation, exact: worstError === 0, worstError };
}
