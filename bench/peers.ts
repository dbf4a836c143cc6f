/**
 * `npm run bench:peers`: the engine beside a real CPU peer, CTranslate2, on the same forged GPT-2 weights and the same
 * workload: BENCH_MESSAGES (64) prompts of 8–200 tokens, greedy, 32 new tokens, 2 threads, one request list.
 *
 * The weights are converted with CTranslate2's own spec API and numpy (bench/tools/ct2_convert.py; no torch), in the
 * tests' virtualenv, where `ctranslate2` is installed on first use. CTranslate2 runs at float32 and int8 (quantized by
 * it at load), with max_batch_size 64 and 16; the engine at fp32 and int8, all requests at once. Before timing, the
 * first greedy token of every prompt is checked: the engine's fp32 and CTranslate2's float32 must agree wherever the
 * top two logits are further apart than float noise. Prints generated tok/s, p50/p95 latency and peak RSS of each,
 * and engine / best CTranslate2 at the same precision; writes bench/results/peers-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EngineGenerator } from '../src/generation/engine-generator.js';
import { TextTokenizer } from '../src/generation/text-tokenizer.js';
import { DecoderEngine } from '../src/inference/decoder-engine.js';
import { compareGreedy, greedyPath } from '../test/helpers/greedy-agreement.js';
import { benchPrompts } from './lib/bench-prompts.js';
import { BENCH_MODELS_DIR, ensureForged, machine, quantile, withPeakRss, writeResult } from './lib/bench-utils.js';

const THREADS = 2;
const N = Number(process.env.BENCH_MESSAGES || 64);
const MAX_NEW = 32;
const PRESET = process.env.BENCH_PRESET || 'gpt2';
const CT2_VERSION = '4.8.5';
/** Logit differences up to this are float noise between two float32 implementations of one model. */
const FLOAT_NOISE = 1e-3;
const venv = path.join(process.env.AVA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ava'), 'venv');
const python = path.join(venv, 'bin', 'python');

/** One configuration's run: what it generated, when each request finished, and its peak memory. */
interface PeerRun {
  name: string;
  precision: 'fp32' | 'int8';
  generated: number[][] | number[];
  tokens: number;
  latenciesMs: number[];
  wallMs: number;
  peakRssMiB: number;
}

function ensureCt2(): void {
  try {
    execFileSync(python, ['-c', `import ctranslate2, onnx; assert ctranslate2.__version__ == '${CT2_VERSION}'`], {
      stdio: 'ignore',
    });
  } catch {
    process.stderr.write(`installing ctranslate2 ${CT2_VERSION} into ${venv}…\n`);
    execFileSync(python, ['-m', 'pip', 'install', '-q', `ctranslate2==${CT2_VERSION}`, 'onnx==1.23.2'], {
      stdio: 'inherit',
    });
  }
}

const dir = await ensureForged(PRESET);
ensureCt2();
const ct2Dir = path.join(BENCH_MODELS_DIR, `${PRESET}-ct2`);
if (
  !(await access(path.join(ct2Dir, 'model.bin')).then(
    () => true,
    () => false,
  ))
) {
  process.stderr.write(`converting ${PRESET} for CTranslate2…\n`);
  execFileSync(python, [path.resolve('bench/tools/ct2_convert.py'), dir, ct2Dir], { stdio: 'inherit' });
}
const tokenizer = await TextTokenizer.load(dir);
const eos = tokenizer.eosTokenId;
const prompts = benchPrompts({ encode: (t) => tokenizer.encode(t), decode: (ids) => tokenizer.decode(ids) }, N).map(
  (p) => tokenizer.encode(p),
);

function ct2(computeType: 'float32' | 'int8', maxBatchSize: number): PeerRun {
  const out = JSON.parse(
    execFileSync(python, [path.resolve('bench/tools/ct2_generate.py')], {
      input: JSON.stringify({
        model: ct2Dir,
        computeType,
        maxBatchSize,
        threads: THREADS,
        maxNewTokens: MAX_NEW,
        prompts,
      }),
      maxBuffer: 64 << 20,
    }).toString(),
  ) as { results: Array<{ ids: number[]; ms: number }>; wallMs: number; peakRssMiB: number };
  const generated = out.results.map((r) => r.ids);
  return {
    name: `CTranslate2 ${CT2_VERSION} ${computeType}, max_batch_size ${maxBatchSize}`,
    precision: computeType === 'float32' ? 'fp32' : 'int8',
    generated,
    tokens: generated.reduce((n, g) => n + g.length, 0),
    latenciesMs: out.results.map((r) => r.ms),
    wallMs: out.wallMs,
    peakRssMiB: out.peakRssMiB,
  };
}

async function engine(precision: 'fp32' | 'int8'): Promise<PeerRun> {
  const generator = await EngineGenerator.load({
    id: PRESET,
    dir,
    intraOpThreads: THREADS,
    maxBatchSize: 64,
    maxCachedTokens: 64 * 256,
    precision,
  });
  try {
    await generator.stream({ promptIds: prompts[0], maxNewTokens: 2 });
    const latenciesMs: number[] = [];
    const counts: number[] = [];
    const t0 = performance.now();
    const { peakRssMiB } = await withPeakRss(() =>
      Promise.all(
        prompts.map((p, i) =>
          generator.stream({ promptIds: p, maxNewTokens: MAX_NEW }).then((o) => {
            latenciesMs[i] = performance.now() - t0;
            counts[i] = o.generatedTokens;
          }),
        ),
      ),
    );
    const wallMs = performance.now() - t0;
    const label = precision === 'int8' ? `int8 (${generator.numerics.int8Kernel})` : 'fp32';
    return {
      name: `engine ${label}, all at once`,
      precision,
      generated: counts,
      tokens: counts.reduce((a, b) => a + b, 0),
      latenciesMs,
      wallMs,
      peakRssMiB,
    };
  } finally {
    await generator.close();
  }
}

// Right answers first: the first greedy token of every prompt, engine fp32 against CTranslate2 float32.
const reference = ct2('float32', 64);
const paths = await DecoderEngine.load(dir, { intraOpThreads: THREADS, maxCachedTokens: 4096 });
let agree = 0;
let knifeEdges = 0;
const mismatches: number[] = [];
for (const [i, p] of prompts.entries()) {
  const path1 = await greedyPath(paths, p, 1, eos);
  const first = (reference.generated as number[][])[i].slice(0, 1);
  const c = compareGreedy(
    path1,
    tokenizer.decode(first),
    (t) => tokenizer.decode(t.filter((x) => x !== eos)),
    FLOAT_NOISE,
  );
  if (c.mismatchAt >= 0) mismatches.push(i);
  else if (c.knifeEdgeAt >= 0) knifeEdges++;
  else agree++;
}
await paths.close();
console.log(
  `first greedy token, engine fp32 vs CTranslate2 float32: ${agree} of ${N} agree, ${knifeEdges} at a knife edge (top two within ${FLOAT_NOISE}), ${mismatches.length} differ at a decisive step`,
);
if (mismatches.length > 0)
  throw new Error(
    `the engine and CTranslate2 disagree at decisive first steps of prompts ${mismatches.join(', ')}: a benchmark of different answers measures nothing`,
  );

const runs: PeerRun[] = [];
for (const precision of ['fp32', 'int8'] as const) runs.push(await engine(precision));
for (const computeType of ['float32', 'int8'] as const) for (const size of [64, 16]) runs.push(ct2(computeType, size));
const tps = (r: PeerRun) => r.tokens / (r.wallMs / 1000);
const rows = runs.map((r) => ({
  run: r.name,
  'generated tok/s': +tps(r).toFixed(1),
  tokens: r.tokens,
  'p50 ms': Math.round(quantile(r.latenciesMs, 0.5)),
  'p95 ms': Math.round(quantile(r.latenciesMs, 0.95)),
  'peak RSS MiB': Math.round(r.peakRssMiB),
}));
console.table(rows);
const ratios: Record<string, number> = {};
for (const precision of ['fp32', 'int8'] as const) {
  const ours = runs.find((r) => r.precision === precision && r.name.startsWith('engine'))!;
  const best = Math.max(...runs.filter((r) => r.precision === precision && r.name.startsWith('CTranslate2')).map(tps));
  ratios[`engine/CTranslate2 ${precision}`] = +(tps(ours) / best).toFixed(2);
}
console.log(ratios);
console.log(
  `written ${await writeResult('peers', { benchmark: 'peers', machine: machine(), preset: PRESET, threads: THREADS, messages: N, maxNewTokens: MAX_NEW, ctranslate2: CT2_VERSION, firstTokens: { agree, knifeEdges, mismatches: mismatches.length }, rows, ratios })}`,
);
