/**
 * `npm run bench:inference`: the assistant (SmolLM2-135M-Instruct, models/smollm2-135m-instruct, or the folder
 * BENCH_MODEL names), or a forged GPT-2 preset with BENCH_PRESET=gpt2, on this machine, one process, one model file.
 *   (a) transformers.js text-generation pipeline, one message at a time (the naive way)
 *   (b) transformers.js model.generate on left-padded batches of 16 prompts of similar length (PipelineGenerator)
 *   (c) the continuous-batching engine, all 64 submitted at once
 *   (d) the engine with Poisson arrivals at 80% of the capacity measured in (c)
 *   (c8) the int8 engine (AVA_ENGINE_PRECISION=int8), all 64 at once; and its decode steps
 * plus the engine's decode-step throughput at batch 1–64 (median of 64 timed steps, with the 10th–90th percentile
 * spread) and the roofline: the workload's FLOPs over the best MatMul rate measured on the engine's own shapes (block
 * projections at decode and prefill row counts, the LM head), before and after the scenarios.
 * Prints tables and writes bench/results/inference-<timestamp>.json.
 */
import { pipeline, env, type Tensor, type TextGenerationPipeline } from '@huggingface/transformers';
import { EngineGenerator } from '../src/generation/engine-generator.js';
import { PipelineGenerator } from '../src/generation/pipeline-generator.js';
import type { GenerationOutput } from '../src/generation/text-generator.js';
import { DecoderEngine } from '../src/inference/decoder-engine.js';
import { ensureForged, machine, quantile, withPeakRss, writeResult } from './lib/bench-utils.js';
import { benchPrompts } from './lib/bench-prompts.js';
import { timeDecodeSteps } from './lib/decode-steps.js';
import { engineShapes, measureMatMulPeak } from './lib/matmul-roofline.js';
import { gpt2Work, llamaWork, roofline, workloadFlops } from './lib/workload-flops.js';
import { readArchitecture } from '../src/inference/engine-graph-converter.js';
import path from 'node:path';

const THREADS = Number(process.env.AVA_INTRA_OP_THREADS || 2);
const N = Number(process.env.BENCH_MESSAGES || 64);
const MAX_NEW = 32;
/** Decode steps timed per batch size. */
const DECODE_STEPS = 64;
const PRESET = process.env.BENCH_PRESET;

interface Scenario {
  name: string;
  outputs: GenerationOutput[];
  latenciesMs: number[];
  wallMs: number;
  peakRssMiB: number;
}

function summarise(s: Scenario) {
  const generated = s.outputs.reduce((n, o) => n + o.generatedTokens, 0);
  return {
    scenario: s.name,
    'generated tok/s': +(generated / (s.wallMs / 1000)).toFixed(1),
    'messages/s': +(s.outputs.length / (s.wallMs / 1000)).toFixed(2),
    'p50 latency ms': Math.round(quantile(s.latenciesMs, 0.5)),
    'p95 latency ms': Math.round(quantile(s.latenciesMs, 0.95)),
    'peak RSS MiB': Math.round(s.peakRssMiB),
    'wall s': +(s.wallMs / 1000).toFixed(1),
  };
}

async function timed(
  name: string,
  run: (done: (i: number, out: GenerationOutput) => void) => Promise<void>,
  arrivals?: number[],
): Promise<Scenario> {
  const outputs: GenerationOutput[] = new Array(N);
  const latenciesMs: number[] = new Array(N);
  process.stderr.write(`running ${name}…\n`);
  const t0 = performance.now();
  const { peakRssMiB } = await withPeakRss(() =>
    run((i, out) => {
      outputs[i] = out;
      latenciesMs[i] = performance.now() - t0 - (arrivals?.[i] ?? 0);
    }),
  );
  return { name, outputs, latenciesMs, wallMs: performance.now() - t0, peakRssMiB };
}

const dir = PRESET
  ? await ensureForged(PRESET)
  : path.resolve(process.env.BENCH_MODEL || 'models/smollm2-135m-instruct');
const MODEL = PRESET ?? path.basename(dir);
const arch = await readArchitecture(dir);
const work =
  arch.family === 'llama'
    ? llamaWork(arch.shape)
    : gpt2Work(arch.preset.nEmbd, arch.preset.nLayer, arch.preset.vocabSize);
env.allowRemoteModels = false;

// The roofline's peak, on the engine's own MatMul shapes, measured before and again after the scenarios.
process.stderr.write('measuring the MatMul peak (before)…\n');
const shapes = engineShapes(work);
const peakBefore = await measureMatMulPeak(shapes, THREADS);

// Measured first, with only this session loaded, so that other sessions' memory and threads do not disturb it.
// Decode-step throughput: B sequences with 128 cached tokens each, one token per step.
process.stderr.write('measuring decode steps…\n');
/** Decode-step throughput of one engine precision: median tok/s per batch size and the 10th–90th percentile. */
async function measureDecode(precision: 'fp32' | 'int8') {
  const raw = await DecoderEngine.load(dir, { intraOpThreads: THREADS, maxCachedTokens: 64 * 256, precision });
  const steps: Record<string, number> = {};
  const spread: Record<string, string> = {};
  for (const B of [1, 8, 16, 32, 64]) {
    let handle = 0;
    for (let s = 0; s < B; s += 16) {
      await raw.prefill(
        Array.from({ length: Math.min(16, B - s) }, () => ({
          handle: ++handle,
          tokens: Array.from({ length: 128 }, (_, k) => 100 + k),
          slots: 128 + DECODE_STEPS + 1,
        })),
      );
    }
    // Each step timed alone, enough of them for a stable median; the spread is the 10th to 90th percentile.
    const rates = (await timeDecodeSteps(raw, B, DECODE_STEPS)).map((ms) => B / (ms / 1000));
    steps[`B=${B}`] = +quantile(rates, 0.5).toFixed(1);
    spread[`B=${B}`] = `${quantile(rates, 0.1).toFixed(0)}–${quantile(rates, 0.9).toFixed(0)}`;
    for (let h = 1; h <= B; h++) raw.release(h);
  }
  await raw.close();
  return { steps, spread };
}
const { steps: decodeSteps, spread: decodeSpread } = await measureDecode('fp32');
process.stderr.write('measuring decode steps (int8)…\n');
const int8Decode = await measureDecode('int8');

const engine = await EngineGenerator.load({
  id: MODEL,
  dir,
  intraOpThreads: THREADS,
  maxBatchSize: 64,
  maxCachedTokens: 64 * 256,
});
const engine8 = await EngineGenerator.load({
  id: MODEL,
  dir,
  intraOpThreads: THREADS,
  maxBatchSize: 64,
  maxCachedTokens: 64 * 256,
  precision: 'int8',
});
const batched = await PipelineGenerator.load({ id: MODEL, dir, intraOpThreads: THREADS });
const naive = (await pipeline('text-generation', dir, {
  dtype: 'fp32',
  local_files_only: true,
  session_options: { intraOpNumThreads: THREADS },
})) as TextGenerationPipeline;

// 64 prompts of 8–200 tokens, cut from a plain English corpus.
const tokenizer = naive.tokenizer;
const prompts = benchPrompts(
  { encode: (t) => tokenizer.encode(t, { add_special_tokens: false }), decode: (ids) => tokenizer.decode(ids) },
  N,
);
const requests = prompts.map((prompt) => ({ promptIds: engine.tokenizer.encode(prompt), maxNewTokens: MAX_NEW }));

// Warm-up: one request through each path, so that session initialisation is not measured.
await engine.stream(requests[0]);
await engine8.stream(requests[0]);
await batched.generate([requests[0]]);
await naive(prompts[0], { max_new_tokens: 2, do_sample: false });

const c = await timed('(c) engine, all at once', async (done) => {
  await Promise.all(requests.map((r, i) => engine.stream(r).then((o) => done(i, o))));
});
const c8 = await timed('(c8) int8 engine, all at once', async (done) => {
  await Promise.all(requests.map((r, i) => engine8.stream(r).then((o) => done(i, o))));
});
await engine8.close();
const capacity = N / (c.wallMs / 1000);
const rate = 0.8 * capacity;
let t = 0;
const arrivals = requests.map((_, i) => {
  const gap = -Math.log(1 - ((i * 2654435761) % 4294967296) / 4294967296) / rate;
  t += i === 0 ? 0 : gap * 1000;
  return t;
});
const d = await timed(
  `(d) engine, Poisson arrivals at ${rate.toFixed(2)} msg/s`,
  async (done) => {
    const t0 = performance.now();
    await Promise.all(
      requests.map(async (r, i) => {
        const wait = arrivals[i] - (performance.now() - t0);
        if (wait > 0) await new Promise((res) => setTimeout(res, wait));
        done(i, await engine.stream(r));
      }),
    );
  },
  arrivals,
);
// The baseline gets the engine's advantage too: its batches of 16 are formed from prompts sorted by length, so
// little of each left-padded batch is padding.
const byLength = requests.map((r, i) => ({ r, i })).sort((x, y) => x.r.promptIds.length - y.r.promptIds.length);
const b = await timed('(b) transformers.js, batches of 16 by length', async (done) => {
  for (let s = 0; s < N; s += 16) {
    const group = byLength.slice(s, s + 16);
    const outs = await batched.generate(group.map((g) => g.r));
    outs.forEach((o, k) => {
      if (o.finishReason === 'error') throw o.error;
      done(group[k].i, o);
    });
  }
});
// One message at a time through the pipeline's own tokenizer and model (what a pipeline call runs), so that the
// tokens generated are counted as (b) and (c) count them: up to end-of-text, never by re-tokenizing the text.
const eos = engine.tokenizer.eosTokenId;
const a = await timed('(a) transformers.js pipeline, one at a time', async (done) => {
  for (let i = 0; i < N; i++) {
    const inputs = naive.tokenizer(prompts[i]) as { input_ids: Tensor; attention_mask: Tensor };
    const out = (await naive.model.generate({
      ...inputs,
      max_new_tokens: MAX_NEW,
      do_sample: false,
      eos_token_id: eos,
      pad_token_id: eos,
    } as Parameters<typeof naive.model.generate>[0])) as Tensor;
    const promptTokens = inputs.input_ids.dims[1];
    const all = Array.from(out.data as BigInt64Array, Number);
    const end = all.indexOf(eos, promptTokens);
    const generated = all.slice(promptTokens, end < 0 ? all.length : end).slice(0, MAX_NEW);
    done(i, {
      text: engine.tokenizer.decode(generated),
      promptTokens,
      generatedTokens: generated.length,
      finishReason: end < 0 ? 'length' : 'stop',
    });
  }
});

// Greedy outputs must agree between the engine and transformers.js; a benchmark of wrong answers measures nothing.
const mismatches = c.outputs.filter((o, i) => o.text !== b.outputs[i].text).length;

// Roofline: the workload's FLOPs over this machine's MatMul peak on the engine's shapes, the better of the two
// measurements. A fraction above 1 means the peak was measured too low (a busy machine), not a result.
process.stderr.write('measuring the MatMul peak (after)…\n');
const peakAfter = await measureMatMulPeak(shapes, THREADS);
const gflops = Math.max(peakBefore.gflops, peakAfter.gflops);
const flops = workloadFlops(c.outputs, work);
const bound = roofline(flops, gflops, c.wallMs / 1000);
const rows = [a, b, c, d, c8].map(summarise);
const tps = (s: Scenario) => s.outputs.reduce((n, o) => n + o.generatedTokens, 0) / (s.wallMs / 1000);
const result = {
  benchmark: 'inference',
  model: { name: MODEL, family: arch.family, layers: work.layers },
  machine: machine(),
  threads: THREADS,
  messages: N,
  maxNewTokens: MAX_NEW,
  scenarios: rows,
  ratios: {
    'c/a': +(tps(c) / tps(a)).toFixed(2),
    'c/b': +(tps(c) / tps(b)).toFixed(2),
    'c8/c': +(tps(c8) / tps(c)).toFixed(2),
  },
  int8: {
    decodeStepTokensPerSecond: int8Decode.steps,
    decodeStepSpread: int8Decode.spread,
    greedyDifferingFromFp32: c8.outputs.filter((o, i) => o.text !== c.outputs[i].text).length,
  },
  decodeStepTokensPerSecond: decodeSteps,
  roofline: {
    matmulPeakGflops: +gflops.toFixed(1),
    peakBefore: peakBefore.best,
    peakAfter: peakAfter.best,
    workloadGflop: +(flops / 1e9).toFixed(1),
    minSeconds: +bound.minSeconds.toFixed(2),
    engineSeconds: +(c.wallMs / 1000).toFixed(2),
    achievedFraction: +bound.achievedFraction.toFixed(3),
    measurementError: bound.measurementError,
  },
  matmulByShapeGflops: { before: peakBefore.byShape, after: peakAfter.byShape },
  decodeStepSpreadTokensPerSecond: decodeSpread,
  greedyMismatchesEngineVsTransformersJs: mismatches,
};
console.table(rows);
console.table([{ ...result.ratios, ...decodeSteps }]);
console.table([
  {
    ...result.roofline,
    peakBefore: `${peakBefore.best.gflops} (${peakBefore.best.shape})`,
    peakAfter: `${peakAfter.best.gflops} (${peakAfter.best.shape})`,
  },
]);
console.table([decodeSpread]);
console.log('int8 engine decode steps (median, p10–p90):');
console.table([int8Decode.steps, int8Decode.spread]);
console.log(
  `int8 engine: greedy outputs differing from the fp32 engine: ${result.int8.greedyDifferingFromFp32} of ${N}`,
);
if (result.roofline.measurementError)
  console.log(
    `MEASUREMENT ERROR: the engine ran faster than the measured peak allows (fraction ${result.roofline.achievedFraction}); the peak was measured too low`,
  );
console.log(`greedy outputs differing between engine and transformers.js: ${mismatches} of ${N}`);
console.log(`written ${await writeResult('inference', result)}`);
await engine.close();
await batched.close();
await naive.dispose();
