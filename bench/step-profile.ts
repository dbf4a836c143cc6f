/**
 * `npm run bench:step-profile`: where one decode step's time goes, by ONNX Runtime's own profiler, for the float32
 * and the int8 engine graph of the assistant (models/smollm2-135m-instruct, or the folder BENCH_MODEL names, or the
 * forged GPT-2 preset BENCH_PRESET names): B = BENCH_BATCH (32) sequences with 128 tokens in a cache of 192 slots, as
 * the engine lays out the decode steps of 128-token prompts with 64 new tokens. Runs each graph 25 times and prints,
 * per operator type (products also by their input shapes), its nodes and milliseconds per run, then int8/fp32 per
 * run. Then the floor under the attention's products: ONNX Runtime reading the same caches once (a ReduceSum per
 * cache tensor, same threads), against the int8 graph's attention products (its only float MatMuls). Writes
 * bench/results/step-profile-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { engineShapeOf, ensureEngineGraph, readArchitecture } from '../src/inference/engine-graph-converter.js';
import { ElemType, OnnxGraphBuilder } from '../src/models/onnx-graph-builder.js';
import { ensureForged, machine, writeResult } from './lib/bench-utils.js';

const B = Number(process.env.BENCH_BATCH || 32);
const CACHED = 128;
const SLOTS = 192;
const RUNS = 25;
const dir = process.env.BENCH_PRESET
  ? await ensureForged(process.env.BENCH_PRESET)
  : path.resolve(process.env.BENCH_MODEL || 'models/smollm2-135m-instruct');
const shape = engineShapeOf(await readArchitecture(dir));
/** Layers, key/value heads (the cache's), head size. */
const [L, H, D] = [shape.nLayer, shape.nKvHead, shape.headDim];

/** The 2·L cache tensors [B, H, SLOTS, D] a decode step reads. */
function cacheFeeds(): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < L; i++)
    for (const kind of ['key', 'value'])
      feeds[`cache.${i}.${kind}`] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: B * H * SLOTS * D }, (_, k) => Math.sin(k) * 0.1),
        [B, H, SLOTS, D],
      );
  return feeds;
}

/** Milliseconds ONNX Runtime takes to read every cache tensor once (best of RUNS), and the bytes read. */
async function streamingFloor() {
  const g = new OnnxGraphBuilder();
  let sum = '';
  for (let i = 0; i < L; i++) {
    for (const kind of ['key', 'value']) {
      const part = g.op(
        'ReduceSum',
        [g.input(`cache.${i}.${kind}`, ElemType.FLOAT, [B, H, SLOTS, D]), g.int64([2, 3])],
        { keepdims: 1 },
      ); // [B, H, 1, 1]
      sum = sum ? g.op('Add', [sum, part]) : part;
    }
  }
  g.op('Identity', [sum], {}, 'sum');
  g.output('sum', ElemType.FLOAT, [B, H, 1, 1]);
  const session = await ort.InferenceSession.create(
    g.encode({ opset: 17, producer: 'ava-bench', graphName: 'cache-floor' }),
    { intraOpNumThreads: 2 },
  );
  const feeds = cacheFeeds();
  await session.run(feeds);
  let best = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  await session.release();
  return { ms: +best.toFixed(1), megabytes: Math.round((2 * L * B * H * SLOTS * D * 4) / 1e6) };
}

async function profile(precision: 'fp32' | 'int8') {
  const graph = (await ensureEngineGraph(dir, undefined, precision)).path;
  for (const old of (await readdir(os.tmpdir())).filter((f) => f.startsWith(`ava-step-${precision}`)))
    await rm(path.join(os.tmpdir(), old), { force: true });
  const session = await ort.InferenceSession.create(graph, {
    intraOpNumThreads: 2,
    enableProfiling: true,
    profileFilePrefix: path.join(os.tmpdir(), `ava-step-${precision}`),
  });
  const mask = new BigInt64Array(B * (SLOTS + 1));
  for (let b = 0; b < B; b++) {
    mask.fill(1n, b * (SLOTS + 1), b * (SLOTS + 1) + CACHED);
    mask[b * (SLOTS + 1) + SLOTS] = 1n;
  }
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', new BigInt64Array(B).fill(262n), [B, 1]),
    attention_mask: new ort.Tensor('int64', mask, [B, SLOTS + 1]),
    position_ids: new ort.Tensor('int64', new BigInt64Array(B).fill(BigInt(CACHED)), [B, 1]),
  };
  Object.assign(feeds, cacheFeeds());
  const started = performance.now();
  for (let r = 0; r < RUNS; r++) await session.run(feeds);
  const runMs = (performance.now() - started) / RUNS;
  // onnxruntime-node writes the profile beside the prefix, named by the time, and does not return its path.
  session.endProfiling();
  const prefix = `ava-step-${precision}`;
  const written = (await readdir(os.tmpdir())).filter((f) => f.startsWith(prefix) && f.endsWith('.json')).sort();
  const file = path.join(os.tmpdir(), written[written.length - 1]);
  const events = JSON.parse(await readFile(file, 'utf8')) as Array<{
    cat: string;
    name: string;
    dur: number;
    args: { op_name?: string; input_type_shape?: Array<Record<string, number[]>> };
  }>;
  await rm(file, { force: true });
  await session.release();
  const byOp = new Map<string, { nodes: number; us: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const name = e.args.op_name ?? '?';
    // An If node's time is its branch's nodes' time, which are listed themselves.
    if (name === 'If') continue;
    const shapes = (e.args.input_type_shape ?? []).map((x) => Object.values(x)[0]);
    const op = /MatMul/.test(name) ? `${name} ${JSON.stringify(shapes.slice(0, 2))}` : name;
    const entry = byOp.get(op) ?? { nodes: 0, us: 0 };
    entry.nodes++;
    entry.us += e.dur;
    byOp.set(op, entry);
  }
  const ops = [...byOp]
    .map(([op, v]) => ({ op, nodes: v.nodes / RUNS, msPerRun: +(v.us / 1000 / RUNS).toFixed(2) }))
    .sort((a, b) => b.msPerRun - a.msPerRun);
  return {
    precision,
    runMs: +runMs.toFixed(1),
    kernelMs: +ops.reduce((s, o) => s + o.msPerRun, 0).toFixed(1),
    nodes: ops.reduce((s, o) => s + o.nodes, 0),
    ops,
  };
}

const results = [await profile('fp32'), await profile('int8')];
for (const r of results) {
  console.log(`\n${r.precision}: ${r.runMs} ms per run (includes profiling), ${r.kernelMs} ms in ${r.nodes} kernels`);
  console.table(r.ops.slice(0, 16));
}
console.log(`int8 / fp32 per run: ${(results[1].runMs / results[0].runMs).toFixed(2)}`);
const floor = await streamingFloor();
const attentionMs = +results[1].ops
  .filter((o) => /^(MatMul|FusedMatMul) /.test(o.op))
  .reduce((s, o) => s + o.msPerRun, 0)
  .toFixed(1);
console.log(
  `reading the caches once (${floor.megabytes} MB): ${floor.ms} ms (${(floor.megabytes / floor.ms).toFixed(1)} GB/s); the int8 graph's attention products: ${attentionMs} ms (${(attentionMs / floor.ms).toFixed(2)}× the floor)`,
);
const out = await writeResult('step-profile', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  batch: B,
  cached: CACHED,
  slots: SLOTS,
  results,
  cacheFloor: { ...floor, attentionMs },
});
console.log(`results: ${out}`);
