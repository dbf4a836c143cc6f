/**
 * `npm run bench:peers`: the engine against the engines a user of a small Llama-family model on CPU would pick
 * instead, in one run on one machine, on the assistant (SmolLM2-135M-Instruct, models/smollm2-135m-instruct, or the
 * folder BENCH_MODEL names):
 * - the AVA engine at fp32 and int8, through EngineGenerator as a worker runs it;
 * - llama.cpp's `llama-server` (built once by the bench from the vendored source of PyPI `llama-cpp-python==0.3.36`,
 *   for this CPU, AMX off) on the shipped Q4_1 GGUF and on F32 and Q8_0 requantized from it by `llama-quantize`;
 * - CTranslate2 4.8.5 at float32 and int8 (quantized by it at load), its Llama spec built from the same weights.
 *
 * Every peer runs in a process of its own and gets the same token ids: BENCH_MESSAGES (64) prompts of
 * BENCH_PROMPT_TOKENS (128), all sent at once, greedy, exactly 64 new tokens each (end-of-text suppressed until then),
 * 2 threads. Measured: generated tok/s end to end; one request alone (time to first token, decode tok/s after it,
 * medians of 3); the process's peak memory. Each configuration runs BENCH_ROUNDS (2) times, in turn, and its fastest
 * run is kept. Before the table, the engine's first greedy token of every prompt is compared with each
 * peer's at the same precision; at fp32 a difference where the engine's top two logits are further apart than float
 * noise fails the run. Then long contexts (BENCH_PART=long-context alone, or `all`, the default): BENCH_LONG_REQUESTS
 * (8) prompts of 1,024 and 4,096 tokens, the engine against llama.cpp. Writes bench/results/peers-<timestamp>.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { TextTokenizer } from '../src/generation/text-tokenizer.js';
import { benchPromptIds } from './lib/bench-prompts.js';
import { BENCH_MODELS_DIR, machine, quantile, writeResult } from './lib/bench-utils.js';
import { CT2_VERSION, ensureCt2, ensureCt2Model, runCt2 } from './lib/ct2-peer.js';
import { agreement, engineFirstTokens } from './lib/first-tokens.js';
import { ensureGguf, ensureLlamaCpp, runLlamaServer, type GgufFormat } from './lib/llama-cpp-peer.js';
import { throughput, type PeerResult, type PeerRun, type PeerWorkload } from './lib/peer-run.js';

const THREADS = 2;
const N = Number(process.env.BENCH_MESSAGES || 64);
const LENGTH = Number(process.env.BENCH_PROMPT_TOKENS || 128);
const NEW = 64;
const LONG_REQUESTS = Number(process.env.BENCH_LONG_REQUESTS || 8);
/** Every configuration runs this many times, in turn, and keeps its fastest run: this virtual machine's speed drifts. */
const ROUNDS = Number(process.env.BENCH_ROUNDS || 2);
const PART = process.env.BENCH_PART || 'all';
/** Logit differences up to this are float noise between two float32 implementations of one model. */
const FLOAT_NOISE = 1e-3;
const dir = path.resolve(process.env.BENCH_MODEL || 'models/smollm2-135m-instruct');
const cacheDir = process.env.AVA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ava');
const python = path.join(cacheDir, 'venv', 'bin', 'python');

ensureCt2(python);
const ct2Model = await ensureCt2Model(python, dir, path.join(BENCH_MODELS_DIR, `${path.basename(dir)}-ct2`));
const llama = await ensureLlamaCpp(cacheDir, python);
const gguf = {} as Record<GgufFormat, string>;
for (const f of ['F32', 'Q8_0', 'Q4_1'] as const) gguf[f] = await ensureGguf(llama.bin, f, python);
const tokenizer = await TextTokenizer.load(dir);

/** The engine in a child process (bench/tools/engine-generate.ts), so that its memory is its own. */
function engineRun(precision: 'fp32' | 'int8', workload: PeerWorkload): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/tools/engine-generate.ts'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as PeerResult) : reject(new Error(`engine run exited ${code}`)),
    );
    child.stdin.end(JSON.stringify({ model: dir, precision, workload }));
  });
}

interface Config {
  peer: PeerRun['peer'];
  format: string;
  precision: PeerRun['precision'];
  run(w: PeerWorkload): Promise<PeerResult>;
}
let port = 18_400;
const llamaConfig = (format: GgufFormat, precision: PeerRun['precision']): Config => ({
  peer: 'llama.cpp',
  format,
  precision,
  run: (w) => runLlamaServer(llama.bin, gguf[format], w, port++),
});
const configs: Config[] = [
  { peer: 'AVA engine', format: 'fp32', precision: 'fp32', run: (w) => engineRun('fp32', w) },
  { peer: 'AVA engine', format: 'int8', precision: 'int8', run: (w) => engineRun('int8', w) },
  llamaConfig('F32', 'fp32'),
  llamaConfig('Q8_0', 'int8'),
  llamaConfig('Q4_1', '4-bit'),
  ...(['float32', 'int8'] as const).map((type): Config => ({
    peer: 'CTranslate2',
    format: type,
    precision: type === 'float32' ? 'fp32' : 'int8',
    run: async (w) => runCt2(python, ct2Model, type, w.prompts.length, w),
  })),
];

async function runAll(list: Config[], w: PeerWorkload, rounds: number): Promise<PeerRun[]> {
  const runs: PeerRun[] = [];
  for (let round = 1; round <= rounds; round++)
    for (const [k, c] of list.entries()) {
      const what = `${c.peer} ${c.format}: ${w.prompts.length} × ${w.prompts[0].length} tokens`;
      process.stderr.write(`round ${round} of ${rounds}, ${what}…\n`);
      const r = await c.run(w);
      const wrong = r.results.filter((x) => x.generated !== w.maxNewTokens).length;
      if (wrong > 0) throw new Error(`${what}: ${wrong} requests did not generate ${w.maxNewTokens} tokens`);
      if (!runs[k] || throughput(r) > throughput(runs[k]))
        runs[k] = { ...r, peer: c.peer, format: c.format, precision: c.precision };
    }
  return runs;
}

const best = (runs: PeerRun[], precision: string, peer: (r: PeerRun) => boolean, of: (r: PeerRun) => number) =>
  Math.max(...runs.filter((r) => r.precision === precision && peer(r)).map(of));
const ours = (r: PeerRun) => r.peer === 'AVA engine';
const result: Record<string, unknown> = {
  benchmark: 'peers',
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  model: path.basename(dir),
  threads: THREADS,
  llamaCpp: { source: 'llama-cpp-python==0.3.36 (vendor/llama.cpp)', cmake: llama.cmake },
  ctranslate2: CT2_VERSION,
};

if (PART === 'all' || PART === 'throughput') {
  const prompts = benchPromptIds((t) => tokenizer.encode(t), N, LENGTH);
  const workload: PeerWorkload = { prompts, single: prompts[0], maxNewTokens: NEW, threads: THREADS };
  const runs = await runAll(configs, workload, ROUNDS);
  const rows = runs.map((r) => ({
    peer: r.peer,
    format: r.format,
    [`${N} at once, generated tok/s`]: +throughput(r).toFixed(1),
    'p50 ms': Math.round(
      quantile(
        r.results.map((x) => x.ms),
        0.5,
      ),
    ),
    'one request: TTFT ms': Math.round(r.single!.ttftMs),
    'one request: decode tok/s': +r.single!.decodeTokS.toFixed(1),
    'peak RSS MiB': Math.round(r.peakRssMiB),
  }));
  console.table(rows);
  const agreements = [];
  for (const precision of ['fp32', 'int8'] as const) {
    const first = await engineFirstTokens(dir, precision, prompts, THREADS, tokenizer.eosTokenId);
    for (const r of runs.filter((x) => x.precision === precision && !ours(x)))
      agreements.push({ precision, ...agreement(first, r, FLOAT_NOISE) });
  }
  console.log(`first greedy token of ${N} prompts, against the engine at the same precision:`);
  console.table(agreements.map((a) => ({ ...a, differ: a.differ.length })));
  const ratios: Record<string, number> = {};
  for (const precision of ['fp32', 'int8'] as const) {
    const mine = runs.find((r) => ours(r) && r.precision === precision)!;
    const lc = runs.find((r) => r.peer === 'llama.cpp' && r.precision === precision)!;
    ratios[`${precision} throughput: engine / best peer`] = +(
      throughput(mine) / best(runs, precision, (r) => !ours(r), throughput)
    ).toFixed(2);
    ratios[`${precision} one-request decode: engine / llama.cpp`] = +(
      mine.single!.decodeTokS / lc.single!.decodeTokS
    ).toFixed(2);
    ratios[`${precision} TTFT: llama.cpp / engine`] = +(lc.single!.ttftMs / mine.single!.ttftMs).toFixed(2);
  }
  console.log(ratios);
  const fp32Differ = agreements.filter((a) => a.precision === 'fp32' && a.differ.length > 0);
  Object.assign(result, { messages: N, promptTokens: LENGTH, maxNewTokens: NEW, agreements, rows, ratios, runs });
  if (fp32Differ.length > 0)
    throw new Error(
      `at fp32 the engine and ${fp32Differ.map((a) => a.peer).join(', ')} disagree at decisive first steps: a benchmark of different answers measures nothing`,
    );
}

if (PART === 'all' || PART === 'long-context') {
  const rows = [];
  for (const length of [128, 1024, 4096]) {
    const prompts = benchPromptIds((t) => tokenizer.encode(t), LONG_REQUESTS, length);
    const workload: PeerWorkload = { prompts, maxNewTokens: NEW, threads: THREADS };
    const list = configs.filter((c) => c.peer !== 'CTranslate2' && c.precision !== '4-bit');
    const runs = await runAll(list, workload, 1);
    const row: Record<string, number | string> = { 'prompt tokens': length };
    for (const r of runs) row[`${r.peer} ${r.format}`] = +throughput(r).toFixed(1);
    for (const precision of ['fp32', 'int8'] as const)
      row[`${precision}: engine / llama.cpp`] = +(
        best(runs, precision, ours, throughput) / best(runs, precision, (r) => !ours(r), throughput)
      ).toFixed(2);
    rows.push(row);
  }
  console.log(`long contexts: ${LONG_REQUESTS} requests at once, ${NEW} new tokens each, generated tok/s`);
  console.table(rows);
  result.longContext = { requests: LONG_REQUESTS, rows };
}
console.log(`written ${await writeResult('peers', result)}`);
