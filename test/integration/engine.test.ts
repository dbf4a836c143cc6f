import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { PipelineGenerator } from '../../src/generation/pipeline-generator.js';
import { DecoderEngine } from '../../src/inference/decoder-engine.js';
import { expectGreedyParity } from '../helpers/transformers-parity.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';

const PROMPTS = [
  'Hi',
  'Where is my order 1234? It has been two weeks and nobody answers my emails.',
  '你好',
  'Can I pay by card?',
  'ok',
  '请问你们周末营业吗？我想周六过来看看。',
  'The quick brown fox jumps over the lazy dog. '.repeat(6),
  'Refund',
  'User: hello\nAssistant: hi\nUser: what is the time?\nAssistant:',
  '🙂🙂🙂',
  'A',
  'Tell me about your return policy for shoes, please.',
];

let engine: EngineGenerator;
let reference: PipelineGenerator;
beforeAll(async () => {
  engine = await EngineGenerator.load({
    id: 'tiny',
    dir: TINY_MODEL_DIR,
    intraOpThreads: 1,
    maxBatchSize: 8,
    maxCachedTokens: 4096,
  });
  reference = await PipelineGenerator.load({ id: 'tiny', dir: TINY_MODEL_DIR, intraOpThreads: 1 });
});
/** A text's ids in the model's tokenizer. */
const ids = (text: string) => engine.tokenizer.encode(text);
afterAll(async () => {
  await engine.close();
  await reference.close();
});

/**
 * Largest logit difference taken as float noise between two float32 implementations of one model (another graph,
 * other kernels): engine-graph.test.ts bounds the engine graph against the standard one at 1e-4; ten times that.
 */
const FLOAT_NOISE = 1e-3;

/** Waits until the engine has run `n` more decode steps, or has nothing left to run. */
async function steps(n: number) {
  const target = engine.batcher.stats.steps + n;
  while (engine.batcher.stats.steps < target && engine.batcher.load.running + engine.batcher.load.waiting > 0)
    await sleep(1);
}

describe('continuous-batching engine (tiny model, real ONNX Runtime)', () => {
  it('answers 12 prompts of mixed lengths arriving at different steps exactly as each alone and as transformers.js', async () => {
    const maxNew = (i: number) => 6 + (i % 4) * 5;
    const alone = [];
    for (let i = 0; i < PROMPTS.length; i++)
      alone.push(await engine.stream({ promptIds: ids(PROMPTS[i]), maxNewTokens: maxNew(i) }));
    const pending = [];
    for (let i = 0; i < PROMPTS.length; i++) {
      pending.push(engine.stream({ promptIds: ids(PROMPTS[i]), maxNewTokens: maxNew(i) }));
      if (i % 3 === 2) await steps(2);
    }
    const together = await Promise.all(pending);
    // More than 8 requests with a batch limit of 8: some waited and joined as others left.
    expect(together.map((t) => t.text)).toEqual(alone.map((a) => a.text));
    // Against transformers.js: the same model through another graph, so the texts are compared step by step up to
    // any step whose top two logits lie within float noise (where either may pick either token with no bug).
    const paths = await DecoderEngine.load(TINY_MODEL_DIR, { intraOpThreads: 1, maxCachedTokens: 4096 });
    try {
      const report = await expectGreedyParity(
        paths,
        reference,
        PROMPTS.map(ids),
        maxNew,
        FLOAT_NOISE,
        together.map((t) => t.text),
      );
      console.info(
        `engine vs transformers.js: ${report.compared} greedy steps compared; ${report.knifeEdges} of ${PROMPTS.length} texts part at a knife edge (top-2 logits within ${FLOAT_NOISE}) and are compared up to it`,
      );
    } finally {
      await paths.close();
    }
  });

  it('keeps the KV cache within its token bound on one long prompt among many short ones, with unchanged outputs', async () => {
    const LIMIT = 1024;
    const bounded = await EngineGenerator.load({
      id: 'tiny',
      dir: TINY_MODEL_DIR,
      intraOpThreads: 1,
      maxBatchSize: 32,
      maxCachedTokens: LIMIT,
    });
    try {
      const long = 'The quick brown fox jumps over the lazy dog. '.repeat(60);
      const prompts = [long, ...Array.from({ length: 24 }, (_, i) => `Short question number ${i}?`)];
      const alone = [];
      for (const prompt of prompts)
        alone.push((await bounded.stream({ promptIds: ids(prompt), maxNewTokens: 12 })).text);
      const together = await Promise.all(
        prompts.map((prompt) => bounded.stream({ promptIds: ids(prompt), maxNewTokens: 12 })),
      );
      expect(together.map((t) => t.text)).toEqual(alone);
      const { peakBytes, bytesPerToken, allocatedBytes } = bounded.stats.cache;
      expect(ids(long).length + 12).toBeGreaterThan(LIMIT / 2);
      expect(peakBytes).toBeGreaterThan(0);
      expect(peakBytes).toBeLessThanOrEqual(LIMIT * bytesPerToken);
      // Drained: nothing stays allocated.
      expect(allocatedBytes).toBe(0);
      // Had every row been as long as the long prompt (the cache before it was bounded), 25 rows would have taken:
      const unbounded = 25 * Math.ceil((ids(long).length + 12) / 64) * 64 * bytesPerToken;
      console.info(
        `KV cache: peak ${peakBytes} B, bound ${LIMIT * bytesPerToken} B, rows × longest would be ${unbounded} B`,
      );
    } finally {
      await bounded.close();
    }
  });

  it('gives a seeded sampled reply the same text whatever else is in the batch', async () => {
    const req = {
      promptIds: ids('Where is my parcel?'),
      maxNewTokens: 16,
      temperature: 0.9,
      topK: 50,
      topP: 0.95,
      repetitionPenalty: 1.2,
      seed: 1234,
    };
    const alone = await engine.stream(req);
    const crowd = await Promise.all([
      engine.stream({ promptIds: ids('noise one'), maxNewTokens: 5, temperature: 1, seed: 1 }),
      engine.stream(req),
      engine.stream({ promptIds: ids(PROMPTS[6]), maxNewTokens: 20 }),
    ]);
    expect(crowd[1].text).toBe(alone.text);
    const other = await engine.stream({ ...req, seed: 4321 });
    expect(other.text).not.toBe(alone.text);
  });

  it('ends at a stop string, returns nothing from it on, and streams exactly the final text', async () => {
    const full = await engine.stream({ promptIds: ids(PROMPTS[3]), maxNewTokens: 20 });
    const stop = full.text.slice(8, 12);
    const deltas: string[] = [];
    const cut = await engine.stream({
      promptIds: ids(PROMPTS[3]),
      maxNewTokens: 20,
      stop: [stop],
      onText: (d) => deltas.push(d),
    });
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(cut.generatedTokens).toBeLessThan(full.generatedTokens);
    expect(deltas.join('')).toBe(cut.text);
    const streamed: string[] = [];
    const plain = await engine.stream({
      promptIds: ids(PROMPTS[0]),
      maxNewTokens: 10,
      onText: (d) => streamed.push(d),
    });
    expect(streamed.join('')).toBe(plain.text);
    expect(streamed.length).toBeGreaterThan(1);
  });

  it('fails a request beyond the window alone and generates one that fills it exactly', async () => {
    const long = ids('word '.repeat(1500));
    const [over, fits] = await engine.generate([
      { promptIds: long.slice(0, 1001), maxNewTokens: 24 },
      { promptIds: long.slice(0, 1000), maxNewTokens: 24 },
    ]);
    expect(over).toMatchObject({
      finishReason: 'error',
      error: { code: 'ERR_GENERATION', message: expect.stringContaining('does not fit the window of 1024 tokens') },
    });
    expect(fits.finishReason).not.toBe('error');
    expect(fits).toMatchObject({ promptTokens: 1000 });
  });

  it('returns the cache and process memory to their baseline after 1,000 requests', async () => {
    const run = async (n: number) => {
      for (let i = 0; i < n; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, (_, k) =>
            engine.stream({ promptIds: ids(PROMPTS[(i + k) % 12]), maxNewTokens: 3 + ((i + k) % 5) }),
          ),
        );
      }
    };
    await run(200);
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    await run(1000);
    global.gc?.();
    expect(engine.stats.cache).toMatchObject({ rows: 0, slots: 0, filledTokens: 0, allocatedBytes: 0 });
    expect(engine.stats.load).toEqual({ running: 0, waiting: 0, cachedTokens: 0 });
    const growthMiB = (process.memoryUsage().rss - baseline) / 2 ** 20;
    console.log(`RSS growth over 1,000 requests: ${growthMiB.toFixed(1)} MiB`);
    expect(growthMiB).toBeLessThan(64);
  });
});
