import { blockwiseInt8MatMul, INT8_BLOCK } from '../models/blockwise-int8.js';
import { ElemType, OnnxGraphBuilder } from '../models/onnx-graph-builder.js';
import { LLAMA_OPSET } from '../models/llama-graph.js';
import { OnnxSession } from './onnx-session.js';

/** Reductions probed: a Llama-family hidden size and a wide MLP's. */
const PROBE_K = [576, 1536];
const PROBE_N = 32;
/** One row (a one-sequence decode step's GEMV path), a small block, and a block with a remainder. */
const PROBE_ROWS = [1, 4, 17];

/** What the probe found: the largest difference from the exact product, relative to the product's magnitude. */
export interface BlockInt8ProbeResult {
  exact: boolean;
  worstError: number;
}

/**
 * Proves ONNX Runtime's int8 block kernel (`MatMulNBits`, 8 bits, int8 compute; see blockwise-int8.ts) exact on the CPU
 * this process runs on, before an int8 Llama engine is used. Weights and activations are integers in [−127, 127] at
 * their extremes (every block's largest magnitude is 127, so their scales are 1 and quantizing them is exact), laid
 * out so that pairs of extreme products meet, where a kernel that adds pairs in saturating 16-bit arithmetic (x86
 * without VNNI) clips. Every output must equal the integer product.
 */
export async function probeBlockInt8(intraOpThreads = 1): Promise<BlockInt8ProbeResult> {
  let worstError = 0;
  for (const K of PROBE_K) {
    const rows = Math.max(...PROBE_ROWS);
    const w = new Float32Array(PROBE_N * K);
    for (let n = 0; n < PROBE_N; n++)
      for (let k = 0; k < K; k++) w[n * K + k] = n % 3 === 0 ? 127 : n % 3 === 1 ? -127 : k % 2 ? 127 : -127;
    const x = new Float32Array(rows * K);
    for (let m = 0; m < rows; m++)
      for (let k = 0; k < K; k++)
        x[m * K + k] = m % 2 ? 127 : k % INT8_BLOCK === 0 ? 127 : ((m * 31 + k * 17) % 255) - 127;
    const g = new OnnxGraphBuilder();
    const input = g.input('x', ElemType.FLOAT, ['rows', K]);
    g.op('Identity', [blockwiseInt8MatMul(g, input, 'probe', w, PROBE_N, K)], {}, 'y');
    g.output('y', ElemType.FLOAT, ['rows', PROBE_N]);
    const session = await OnnxSession.open(
      g.encode({ opset: LLAMA_OPSET, producer: 'ava-probe', graphName: 'probe' }),
      {
        intraOpThreads,
      },
    );
    try {
      for (const M of PROBE_ROWS) {
        const { y } = await session.run({ x: { type: 'float32', data: x.subarray(0, M * K), dims: [M, K] } }, ['y']);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < PROBE_N; n++) {
            let want = 0;
            for (let k = 0; k < K; k++) want += x[m * K + k] * w[n * K + k];
            const got = y.data[m * PROBE_N + n] as number;
            // Sums past 2^24 are rounded once they are floats; anything beyond that is the kernel's error.
            worstError = Math.max(worstError, Math.abs(got - want) / Math.max(1, Math.abs(want) * 2 ** -23));
          }
      }
    } finally {
      await session.close();
    }
  }
  return { exact: worstError <= 4, worstError };
}
