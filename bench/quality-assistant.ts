/**
 * `npm run bench:quality` on the assistant (the default; BENCH_PRESET picks a forged GPT-2 instead): how far the
 * int8 engine (linear layers in int8 blocks of 32, see blockwise-int8.ts) takes SmolLM2-135M-Instruct from float32.
 * - Teacher-forced: the project's own English prose as of commit e7e22a5 (its docs/*.md and the English knowledge
 *   base, read with git so that editing the docs never changes the corpus), cut into chunks of BENCH_CHUNK tokens,
 *   both engines fed the same real tokens; mean KL and top-1 agreement over every position.
 * - Greedy: the share of BENCH_STEPS-token greedy continuations of chat prompts that are identical.
 * Writes bench/results/quality-assistant-<timestamp>.json, and the chunks' token ids to
 * bench/results/quality-chunks.json, on which test/fixtures/tools/llama-cpp-agreement.py measures llama.cpp's own
 * Q8_0 against its F32, for comparison.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { TextTokenizer } from '../src/generation/text-tokenizer.js';
import { DecoderEngine } from '../src/inference/decoder-engine.js';
import { AgreementMeter } from '../test/helpers/next-token-quality.js';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { machine, writeResult } from './lib/bench-utils.js';
import { greedyBatch, teacherForcedBatch } from './lib/teacher-forced.js';

const dir = path.resolve(process.env.BENCH_MODEL || 'models/smollm2-135m-instruct');
const CHUNK = Number(process.env.BENCH_CHUNK || 256);
const CHUNKS = Number(process.env.BENCH_CHUNKS || 10);
const STEPS = Number(process.env.BENCH_STEPS || 32);
const BATCH = 16;

const tokenizer = await TextTokenizer.load(dir);
const CORPUS_COMMIT = 'e7e22a5';
const git = (...args: string[]) => execFileSync('git', args, { maxBuffer: 64 * 2 ** 20 }).toString();
const docs = [
  'kb/shop-faq.en.md',
  ...git('ls-tree', '--name-only', `${CORPUS_COMMIT}:docs`)
    .split('\n')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const text = docs.map((f) => git('show', `${CORPUS_COMMIT}:${f}`)).join('\n\n');
const ids = tokenizer.encode(text);
const chunks = Array.from({ length: CHUNKS }, (_, i) => ids.slice(i * CHUNK, (i + 1) * CHUNK)).filter(
  (c) => c.length === CHUNK,
);
await writeFile('bench/results/quality-chunks.json', JSON.stringify({ commit: CORPUS_COMMIT, chunks }));
const opts = { intraOpThreads: 2, maxCachedTokens: 65_536 };
const fp32 = await DecoderEngine.load(dir, opts);
const int8 = await DecoderEngine.load(dir, { ...opts, precision: 'int8' });

// Teacher forcing: the float32 logits of each batch are kept only until the int8 pass has used them.
const meter = new AgreementMeter();
for (let b = 0; b < chunks.length; b += BATCH) {
  const batch = chunks.slice(b, b + BATCH);
  const reference = new Map<string, Float32Array>();
  await teacherForcedBatch(fp32, batch, 1, (c, k, l) => reference.set(`${c}:${k}`, l.slice()));
  await teacherForcedBatch(int8, batch, 1, (c, k, l) => meter.add(reference.get(`${c}:${k}`)!, l));
}
const forced = meter.result;

// Greedy continuations of chat prompts.
const chat = (q: string) => [
  ...tokenizer.encodeMarkup(tokenizer.chat!.open.user),
  ...tokenizer.encode(q),
  ...tokenizer.encodeMarkup(tokenizer.chat!.close.user + tokenizer.chat!.generation),
];
const questions = JSON.parse(readFileSync('test/fixtures/open-questions-dev.json', 'utf8')) as string[];
const prompts = questions.map(chat);
let identical = 0;
const firstDiff: number[] = [];
for (let b = 0; b < prompts.length; b += BATCH) {
  const batch = prompts.slice(b, b + BATCH);
  const [a, q] = [await greedyBatch(fp32, batch, STEPS), await greedyBatch(int8, batch, STEPS)];
  a.forEach((seq, i) => {
    const at = seq.findIndex((t, s) => t !== q[i][s]);
    if (at < 0) identical++;
    else firstDiff.push(at);
  });
}
await Promise.all([fp32.close(), int8.close()]);

console.log(`\n${path.basename(dir)}: int8 engine against float32\n`);
console.table([
  {
    measure: `teacher-forced over ${forced.steps} positions of real text (${chunks.length} chunks of ${CHUNK})`,
    value: `top-1 ${(100 * forced.top1).toFixed(2)} %, mean KL ${forced.meanKl.toFixed(5)} nats`,
  },
  {
    measure: `identical ${STEPS}-token greedy continuations of ${prompts.length} chat prompts`,
    value: `${identical} (${((100 * identical) / prompts.length).toFixed(1)} %); first difference at tokens ${firstDiff.sort((x, y) => x - y).join(', ') || '-'}`,
  },
]);
const file = await writeResult('quality-assistant', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  model: path.basename(dir),
  teacherForced: {
    ...forced,
    chunks: chunks.length,
    chunkTokens: CHUNK,
    corpus: { commit: CORPUS_COMMIT, files: docs },
  },
  greedy: {
    prompts: prompts.length,
    steps: STEPS,
    identical,
    share: identical / prompts.length,
    firstDifference: firstDiff,
  },
});
console.log(`results: ${file}`);
