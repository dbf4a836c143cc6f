/**
 * `npm run bench:long-context`: decode at long cached lengths, and whether ONNX Runtime's fused attention would be
 * faster there. Two parts, on the forged gpt2 preset's shapes (12 heads of 64, 12 layers):
 *   1. the engine's decode step (fp32 and int8) at B = 1 and 8 with 128, 512 and 1,000 tokens cached: the median of
 *      16 timed steps, in tokens/s and ms per step;
 *   2. one attention layer for one new token against P cached ones, as the engine computes it (the cache read in
 *      place: scores against it and against the new token apart) and as `com.microsoft.MultiHeadAttention` with
 *      past_key/past_value computes it (its present = past ⧺ new, a copy of the cache every step), median of 200 runs.
 * Prints both tables, the fused/engine ratio per shape, and writes bench/results/long-context-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { DecoderEngine } from '../src/inference/decoder-engine.js';
import { cacheAttention } from '../src/models/gpt2-attention.js';
import { ElemType, OnnxGraphBuilder } from '../src/models/onnx-graph-builder.js';
import { ensureForged, machine, quantile, writeResult } from './lib/bench-utils.js';
import { timeDecodeSteps } from './lib/decode-steps.js';

const LENGTHS = [128, 512, 1000];
const BATCHES = [1, 8];
const STEPS = 16;
const H = 12;
const D = 64;
const C = H * D;

const dir = await ensureForged(process.env.BENCH_PRESET || 'gpt2');
const decode: Array<Record<string, string | number>> = [];
for (const precision of ['fp32', 'int8'] as const) {
  const engine = await DecoderEngine.load(dir, { intraOpThreads: 2, maxCachedTokens: 8 * 1024 + 64, precision });
  for (const B of BATCHES) {
    for (const L of LENGTHS) {
      for (let h = 1; h <= B; h++)
        await engine.prefill([
          { handle: h, tokens: Array.from({ length: L }, (_, k) => 100 + ((k * 7) % 5000)), slots: L + STEPS + 2 },
        ]);
      const ms = await timeDecodeSteps(engine, B, STEPS);
      for (let h = 1; h <= B; h++) engine.release(h);
      const median = quantile(ms, 0.5);
      decode.push({
        precision,
        B,
        cached: L,
        'ms/step': +median.toFixed(1),
        'tok/s': +((B * 1000) / median).toFixed(1),
        'p10–p90 ms': `${quantile(ms, 0.1).toFixed(1)}–${quantile(ms, 0.9).toFixed(1)}`,
      });
      process.stderr.write(`${precision} B=${B} cached=${L}: ${median.toFixed(1)} ms/step\n`);
    }
  }
  await engine.close();
}

/** One attention layer from [B, 1, C] q, k, v and a [B, H, P, D] cache to [B, 1, C], as the engine does it. */
function engineAttention(): Uint8Array {
  const g = new OnnxGraphBuilder();
  const heads = (x: string) => g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, H, D])])], { perm: [0, 2, 1, 3] });
  const [q, k, v] = ['query', 'key', 'value'].map((n) => heads(g.input(n, ElemType.FLOAT, ['B', 1, C])));
  const cache = {
    key: g.input('past_key', ElemType.FLOAT, ['B', H, 'P', D]),
    value: g.input('past_value', ElemType.FLOAT, ['B', H, 'P', D]),
  };
  const bias = g.input('bias', ElemType.FLOAT, ['B', 1, 1, 'S']);
  const ctx = cacheAttention(g, 0, q, k, v, cache, bias, g.float(1 / Math.sqrt(D)), [H, D]);
  g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), g.int64([0, 0, C])], {}, 'output');
  g.output('output', ElemType.FLOAT, ['B', 1, C]);
  return g.encode({ opset: 17, producer: 'ava-bench', graphName: 'engine-attention' });
}

/** The same with ONNX Runtime's fused MultiHeadAttention, which returns present = past ⧺ new. */
function fusedAttention(): Uint8Array {
  const g = new OnnxGraphBuilder();
  const [q, k, v] = ['query', 'key', 'value'].map((n) => g.input(n, ElemType.FLOAT, ['B', 1, C]));
  const past = [
    g.input('past_key', ElemType.FLOAT, ['B', H, 'P', D]),
    g.input('past_value', ElemType.FLOAT, ['B', H, 'P', D]),
  ];
  g.opN(
    'MultiHeadAttention',
    [q, k, v, '', '', '', past[0], past[1]],
    3,
    { num_heads: H },
    ['output', 'present_key', 'present_value'],
    'com.microsoft',
  );
  g.output('output', ElemType.FLOAT, ['B', 1, C]);
  g.output('present_key', ElemType.FLOAT, ['B', H, 'S', D]);
  g.output('present_value', ElemType.FLOAT, ['B', H, 'S', D]);
  return g.encode({ opset: 17, producer: 'ava-bench', graphName: 'fused-attention' });
}

const options = { intraOpNumThreads: 2, graphOptimizationLevel: 'all' as const };
const sessions = {
  engine: await ort.InferenceSession.create(engineAttention(), options),
  fused: await ort.InferenceSession.create(fusedAttention(), options),
};
const attention: Array<Record<string, string | number>> = [];
const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
for (const B of BATCHES) {
  for (const P of LENGTHS) {
    const feeds: Record<string, ort.Tensor> = {
      query: new ort.Tensor('float32', rand(B * C), [B, 1, C]),
      key: new ort.Tensor('float32', rand(B * C), [B, 1, C]),
      value: new ort.Tensor('float32', rand(B * C), [B, 1, C]),
      past_key: new ort.Tensor('float32', rand(B * H * P * D), [B, H, P, D]),
      past_value: new ort.Tensor('float32', rand(B * H * P * D), [B, H, P, D]),
    };
    const row: Record<string, string | number> = { B, cached: P };
    const outputs: Record<string, Float32Array> = {};
    for (const [name, session] of Object.entries(sessions)) {
      const f: Record<string, ort.Tensor> = { ...feeds };
      if (name === 'engine') f.bias = new ort.Tensor('float32', new Float32Array(B * (P + 1)), [B, 1, 1, P + 1]);
      for (let w = 0; w < 20; w++) await session.run(f);
      const us: number[] = [];
      for (let r = 0; r < 200; r++) {
        const t0 = performance.now();
        const out = await session.run(f);
        us.push((performance.now() - t0) * 1000);
        if (r === 0) outputs[name] = out.output.data as Float32Array;
      }
      row[`${name} µs`] = +quantile(us, 0.5).toFixed(0);
    }
    let worst = 0;
    for (let i = 0; i < outputs.engine.length; i++)
      worst = Math.max(worst, Math.abs(outputs.engine[i] - outputs.fused[i]));
    row['fused/engine'] = +((row['fused µs'] as number) / (row['engine µs'] as number)).toFixed(2);
    row['max |Δ|'] = +worst.toExponential(1);
    attention.push(row);
  }
}
await Promise.all(Object.values(sessions).map((s) => s.release()));

console.log('\nDecode steps at long cached lengths (gpt2, 2 threads):');
console.table(decode);
console.log('One attention layer, one new token (12 heads of 64), the same outputs both ways (max |Δ|):');
console.table(attention);
const file = await writeResult('long-context', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  onnxruntimeNode: ort.env.versions.common,
  decode,
  attention,
});
console.log(`results: ${file}`);
