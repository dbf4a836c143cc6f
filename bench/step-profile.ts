/**
 * `npm run bench:step-profile`: where one decode step's time goes, by ONNX Runtime's own profiler, for the float32
 * and the int8 engine graph of the forged gpt2 (BENCH_PRESET): B = 32 sequences with 128 tokens in a cache of 192
 * slots, as the engine lays out bench:inference's decode steps (the longest row, 128 to 192 tokens, rounded up to 64). Runs each graph 25 times and prints, per operator type, its nodes and
 * milliseconds per run, then int8/fp32 per run. Writes bench/results/step-profile-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ensureEngineGraph } from '../src/inference/engine-graph-converter.js';
import { ensureForged, machine, writeResult } from './lib/bench-utils.js';

const B = Number(process.env.BENCH_BATCH || 32);
const CACHED = 128;
const SLOTS = 192;
const RUNS = 25;
const dir = await ensureForged(process.env.BENCH_PRESET || 'gpt2');
const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { n_layer: number; n_head: number; n_embd: number };
const [L, H, D] = [config.n_layer, config.n_head, config.n_embd / config.n_head];

async function profile(precision: 'fp32' | 'int8') {
  const graph = (await ensureEngineGraph(dir, undefined, precision)).path;
  for (const old of (await readdir(os.tmpdir())).filter((f) => f.startsWith(`ava-step-${precision}`))) await rm(path.join(os.tmpdir(), old), { force: true });
  const session = await ort.InferenceSession.create(graph, { intraOpNumThreads: 2, enableProfiling: true, profileFilePrefix: path.join(os.tmpdir(), `ava-step-${precision}`) });
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
  for (let i = 0; i < L; i++) for (const kind of ['key', 'value']) feeds[`cache.${i}.${kind}`] = new ort.Tensor('float32', Float32Array.from({ length: B * H * SLOTS * D }, (_, k) => Math.sin(k) * 0.1), [B, H, SLOTS, D]);
  const started = performance.now();
  for (let r = 0; r < RUNS; r++) await session.run(feeds);
  const runMs = (performance.now() - started) / RUNS;
  // onnxruntime-node writes the profile beside the prefix, named by the time, and does not return its path.
  session.endProfiling();
  const prefix = `ava-step-${precision}`;
  const written = (await readdir(os.tmpdir())).filter((f) => f.startsWith(prefix) && f.endsWith('.json')).sort();
  const file = path.join(os.tmpdir(), written[written.length - 1]);
  const events = JSON.parse(await readFile(file, 'utf8')) as Array<{ cat: string; name: string; dur: number; args: { op_name?: string } }>;
  await rm(file, { force: true });
  await session.release();
  const byOp = new Map<string, { nodes: number; us: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args.op_name ?? '?';
    // An If node's time is its branch's nodes' time, which are listed themselves.
    if (op === 'If') continue;
    const entry = byOp.get(op) ?? { nodes: 0, us: 0 };
    entry.nodes++;
    entry.us += e.dur;
    byOp.set(op, entry);
  }
  const ops = [...byOp].map(([op, v]) => ({ op, nodes: v.nodes / RUNS, msPerRun: +(v.us / 1000 / RUNS).toFixed(2) })).sort((a, b) => b.msPerRun - a.msPerRun);
  return { precision, runMs: +runMs.toFixed(1), kernelMs: +ops.reduce((s, o) => s + o.msPerRun, 0).toFixed(1), nodes: ops.reduce((s, o) => s + o.nodes, 0), ops };
}

const results = [await profile('fp32'), await profile('int8')];
for (const r of results) {
  console.log(`\n${r.precision}: ${r.runMs} ms per run (includes profiling), ${r.kernelMs} ms in ${r.nodes} kernels`);
  console.table(r.ops.slice(0, 12));
}
console.log(`int8 / fp32 per run: ${(results[1].runMs / results[0].runMs).toFixed(2)}`);
const out = await writeResult('step-profile', { date: new Date().toISOString(), commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(), machine: machine(), batch: B, cached: CACHED, slots: SLOTS, results });
console.log(`results: ${out}`);
