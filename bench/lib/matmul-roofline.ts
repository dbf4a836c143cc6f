import type { ModelWork } from './workload-flops.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OnnxSession } from '../../src/inference/onnx-session.js';
import { ElemType, OnnxGraphBuilder } from '../../src/models/onnx-graph-builder.js';
import { matmulFlops } from './workload-flops.js';

/** One MatMul the engine runs: `rows` activations of width K times a [K, N] weight. */
export interface MatMulShape {
  name: string;
  rows: number;
  K: number;
  N: number;
}

/** The best rate of each shape and the peak over all of them, in GFLOP/s. */
export interface MatMulPeak {
  gflops: number;
  best: { shape: string; gflops: number };
  byShape: Record<string, number>;
}

/**
 * The MatMuls GPT-2 (width C, vocabulary V) runs in the engine: the four projections of a block at decode row counts
 * (1–64 sequences) and at the prefill row counts the engine uses (groups of up to 4,096 tokens), and the LM head at
 * the rows it is applied to (the last position of each sequence, 1–64).
 */
export function engineShapes(w: Pick<ModelWork, 'C' | 'vocab' | 'projections'>): MatMulShape[] {
  const shapes: MatMulShape[] = [];
  for (const rows of [1, 16, 64, 512, 4096])
    for (const [name, K, N] of w.projections) shapes.push({ name: `${name}@${rows}`, rows, K, N });
  for (const rows of [1, 16, 64]) shapes.push({ name: `lm-head@${rows}`, rows, K: w.C, N: w.vocab });
  return shapes;
}

/**
 * This machine's fp32 MatMul rate with ONNX Runtime on the given shapes: each shape runs `repetitions` timed
 * batches of at least `minMs` and keeps its best, and the peak is the best shape's. Best-of-several is what a
 * roofline needs: a busy moment can only make a repetition slower, never faster.
 */
export async function measureMatMulPeak(
  shapes: readonly MatMulShape[],
  threads: number,
  repetitions = 5,
  minMs = 60,
): Promise<MatMulPeak> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-roofline-'));
  const byShape: Record<string, number> = {};
  try {
    for (const s of shapes) {
      const g = new OnnxGraphBuilder();
      const a = g.input('a', ElemType.FLOAT, [s.rows, s.K]);
      const w = new Float32Array(s.K * s.N).map((_, i) => ((i * 2654435761) % 1000) / 1e5);
      g.op('MatMul', [a, g.weight('w', [s.K, s.N], w)], {}, 'y');
      g.output('y', ElemType.FLOAT, [s.rows, s.N]);
      const file = path.join(dir, `mm-${s.name}.onnx`);
      await writeFile(file, g.encode({ opset: 17, producer: 'ava-bench', graphName: 'matmul' }));
      const session = await OnnxSession.open(file, { intraOpThreads: threads });
      const feeds = {
        a: { type: 'float32' as const, data: new Float32Array(s.rows * s.K).fill(0.01), dims: [s.rows, s.K] },
      };
      await session.run(feeds);
      let best = 0;
      for (let r = 0; r < repetitions; r++) {
        let runs = 0;
        const t0 = performance.now();
        do {
          await session.run(feeds);
          runs++;
        } while (performance.now() - t0 < minMs);
        best = Math.max(best, (runs * matmulFlops(s.rows, s.K, s.N)) / ((performance.now() - t0) / 1000) / 1e9);
      }
      byShape[s.name] = +best.toFixed(1);
      await session.close();
    }
    const [shape, gflops] = Object.entries(byShape).sort((x, y) => y[1] - x[1])[0];
    return { gflops, best: { shape, gflops }, byShape };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
