/**
 * `npm run bench:quality`: how far int8 takes a model from float32, on the forged gpt2 preset (BENCH_PRESET). Two
 * int8 models against the same float32 baseline, over the float32 engine's greedy continuations (teacher forcing):
 *   - the engine's int8 graph (AVA_ENGINE_PRECISION=int8: per-column weights, per-token activations);
 *   - the model quantized by onnxruntime's own `quantize_dynamic` (PyPI, run here in the tests' virtualenv), run as
 *     it is by ONNX Runtime (per-tensor int8 activations), as transformers.js's users run `model_quantized.onnx`.
 * Prints mean KL and top-1 agreement per step and the greedy continuations that differ from float32; reports the
 * engine's KL over quantize_dynamic's as a ratio; writes bench/results/quality-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../src/generation/text-tokenizer.js';
import { DecoderEngine } from '../src/inference/decoder-engine.js';
import {
  AgreementMeter,
  argmax,
  engineTeacherForced,
  exportTeacherForced,
  greedyContinuation,
} from '../test/helpers/next-token-quality.js';
import { ensureForged, machine, writeResult } from './lib/bench-utils.js';

const PRESET = process.env.BENCH_PRESET || 'gpt2';
const STEPS = Number(process.env.BENCH_STEPS || 24);
const PROMPTS = [
  'Where is my order? I paid last week and',
  'Our return policy allows customers to',
  'The delivery was late because',
  'Thank you for contacting customer service.',
  'Can I pay by credit card or',
  'The sofa arrived damaged and the',
  'Opening hours on Sunday are',
  'To track a parcel, enter the number',
  'Refunds reach the original payment method within',
  'I would like to speak to a person about',
  'Shipping is free for orders over',
  'Hello! How can I help you today?',
  'The quick brown fox jumps over the lazy dog.',
  'Assembly of large furniture is offered for',
  'Gift cards can be used online and',
  'Membership gives you points on every',
];

const dir = await ensureForged(PRESET);
const python = path.join(
  process.env.AVA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ava'),
  'venv',
  'bin',
  'python',
);
if (!existsSync(python))
  throw new Error(`no virtualenv at ${python}: run npm test once (it installs onnxruntime from PyPI there)`);
const quantized = path.join(path.dirname(dir), `${path.basename(dir)}-quantize-dynamic.onnx`);
if (!existsSync(quantized)) {
  console.log(`quantizing ${dir} with onnxruntime.quantization.quantize_dynamic …`);
  execFileSync(
    python,
    [
      '-c',
      'import sys; from onnxruntime.quantization import QuantType, quantize_dynamic; quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QUInt8)',
      path.join(dir, 'onnx', 'model.onnx'),
      quantized,
    ],
    { stdio: 'inherit' },
  );
}
const ortVersion = execFileSync(python, ['-c', 'import onnxruntime; print(onnxruntime.__version__)']).toString().trim();
const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as {
  n_layer: number;
  n_head: number;
  n_embd: number;
};
const dims = [config.n_layer, config.n_head, config.n_embd / config.n_head] as const;

const tokenizer = await TextTokenizer.load(dir);
const fp32 = await DecoderEngine.load(dir, { intraOpThreads: 2, maxCachedTokens: 8192 });
const int8 = await DecoderEngine.load(dir, { intraOpThreads: 2, maxCachedTokens: 8192, precision: 'int8' });
const reference = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'), { intraOpNumThreads: 2 });
const dynamic = await ort.InferenceSession.create(quantized, { intraOpNumThreads: 2 });
const engineMeter = new AgreementMeter();
const dynamicMeter = new AgreementMeter();
const checkMeter = new AgreementMeter();
let engineDiffers = 0;
let dynamicDiffers = 0;
for (const text of PROMPTS) {
  const prompt = tokenizer.encode(text);
  const continuation = await greedyContinuation(fp32, prompt, STEPS);
  const a = await engineTeacherForced(fp32, prompt, continuation);
  const b = await engineTeacherForced(int8, prompt, continuation);
  const r = await exportTeacherForced(reference, prompt, continuation, ...dims);
  const d = await exportTeacherForced(dynamic, prompt, continuation, ...dims);
  a.forEach((logits, s) => {
    engineMeter.add(logits, b[s]);
    dynamicMeter.add(r[s], d[s]);
    checkMeter.add(logits, r[s]);
  });
  if ((await greedyContinuation(int8, prompt, STEPS)).join() !== continuation.join()) engineDiffers++;
  // quantize_dynamic's own greedy continuation, one full pass per token (short prompts, so cheap enough).
  const own: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const logits = await exportTeacherForced(dynamic, prompt, own, ...dims);
    own.push(argmax(logits[logits.length - 1]));
  }
  if (own.join() !== continuation.join()) dynamicDiffers++;
}
await Promise.all([fp32.close(), int8.close(), reference.release(), dynamic.release()]);

const engine = engineMeter.result;
const dyn = dynamicMeter.result;
console.log(
  `\n${PRESET}: ${PROMPTS.length} prompts × ${STEPS + 1} teacher-forced steps (the float32 engine's greedy continuation)\n`,
);
console.table([
  {
    model: 'engine int8 (per-token activations)',
    'mean KL (nats)': +engine.meanKl.toFixed(5),
    'top-1 agreement': `${(100 * engine.top1).toFixed(1)} %`,
    'greedy differing': `${engineDiffers} of ${PROMPTS.length}`,
  },
  {
    model: `quantize_dynamic (onnxruntime ${ortVersion})`,
    'mean KL (nats)': +dyn.meanKl.toFixed(5),
    'top-1 agreement': `${(100 * dyn.top1).toFixed(1)} %`,
    'greedy differing': `${dynamicDiffers} of ${PROMPTS.length}`,
  },
]);
console.log(
  `engine KL / quantize_dynamic KL: ${(engine.meanKl / dyn.meanKl).toFixed(2)}; float32 engine vs the float32 export (a check): KL ${checkMeter.result.meanKl.toExponential(1)}, top-1 ${(100 * checkMeter.result.top1).toFixed(1)} %`,
);
const file = await writeResult('quality', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  preset: PRESET,
  prompts: PROMPTS.length,
  steps: STEPS,
  engineInt8: { ...engine, greedyDiffering: engineDiffers },
  quantizeDynamic: { ...dyn, greedyDiffering: dynamicDiffers, onnxruntime: ortVersion },
  fp32EngineVsExport: checkMeter.result,
  klRatio: engine.meanKl / dyn.meanKl,
});
console.log(`results: ${file}`);
