import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OnnxSession } from '../../src/inference/onnx-session.js';
import { ElemType, OnnxGraphBuilder } from '../../src/models/onnx-graph-builder.js';

/**
 * This machine's fp32 MatMul rate with ONNX Runtime on GPT-2's own shapes: the four projections of a block
 * (768→2304, 768→768, 768→3072, 3072→768) with `rows` activations. Returns GFLOP/s.
 */
export async function measureMatMulRate(rows: number, threads: number, seconds = 2): Promise<number> {
  const C = 768;
  const shapes: Array<[number, number]> = [[C, 3 * C], [C, C], [C, 4 * C], [4 * C, C]];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-roofline-'));
  try {
    let flops = 0;
    let ms = 0;
    for (const [K, N] of shapes) {
      const g = new OnnxGraphBuilder();
      const a = g.input('a', ElemType.FLOAT, [rows, K]);
      const w = new Float32Array(K * N).map((_, i) => ((i * 2654435761) % 1000) / 1e5);
      g.op('MatMul', [a, g.weight('w', [K, N], w)], {}, 'y');
      g.output('y', ElemType.FLOAT, [rows, N]);
      const file = path.join(dir, `mm-${K}x${N}.onnx`);
      await writeFile(file, g.encode({ opset: 17, producer: 'ava-bench', graphName: 'matmul' }));
      const session = await OnnxSession.open(file, { intraOpThreads: threads });
      const feeds = { a: { type: 'float32' as const, data: new Float32Array(rows * K).fill(0.01), dims: [rows, K] } };
      for (let i = 0; i < 3; i++) await session.run(feeds);
      let runs = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < (seconds * 1000) / shapes.length) {
        await session.run(feeds);
        runs++;
      }
      ms += performance.now() - t0;
      flops += runs * 2 * rows * K * N;
      await session.close();
    }
    return flops / (ms / 1000) / 1e9;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
