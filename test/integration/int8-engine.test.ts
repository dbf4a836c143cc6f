import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { DecoderEngine } from '../../src/inference/decoder-engine.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { AgreementMeter, engineTeacherForced, greedyContinuation } from '../helpers/next-token-quality.js';

const PROMPTS = [
  'Hi',
  'Where is my order 1234? It has been two weeks.',
  '你好',
  'Can I pay by card?',
  'The quick brown fox jumps over the lazy dog.',
  'Tell me about your return policy for shoes, please.',
];
/** Teacher-forced steps per prompt. */
const STEPS = 24;

let cacheDir: string;
let tokenizer: TextTokenizer;
beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'ava-int8-'));
  tokenizer = await TextTokenizer.load(TINY_MODEL_DIR);
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('the int8 engine (per-column int8 weights, per-token int8 activations)', () => {
  it('stays close to the float32 engine under teacher forcing: mean KL and top-1 agreement, measured and bounded', async () => {
    const fp32 = await DecoderEngine.load(TINY_MODEL_DIR, { intraOpThreads: 1, maxCachedTokens: 4096, cacheDir });
    const int8 = await DecoderEngine.load(TINY_MODEL_DIR, {
      intraOpThreads: 1,
      maxCachedTokens: 4096,
      cacheDir,
      precision: 'int8',
    });
    const meter = new AgreementMeter();
    try {
      for (const text of PROMPTS) {
        const prompt = tokenizer.encode(text);
        // The continuation both are fed: the float32 engine's greedy choice at each step.
        const continuation = await greedyContinuation(fp32, prompt, STEPS);
        const [a, b] = [
          await engineTeacherForced(fp32, prompt, continuation),
          await engineTeacherForced(int8, prompt, continuation),
        ];
        for (let s = 0; s < a.length; s++) meter.add(a[s], b[s]);
      }
    } finally {
      await fp32.close();
      await int8.close();
    }
    const { meanKl, top1, steps } = meter.result;
    console.info(
      `int8 vs fp32 (tiny model, ${steps} teacher-forced steps): mean KL ${meanKl.toFixed(5)} nats, top-1 agreement ${(top1 * 100).toFixed(1)}%`,
    );
    // Measured 0.00002 and 94.0 % with an exact kernel (VNNI natively, u8u8 under qemu's AVX2-only CPU); the saturating
    // u8·s8 kernel on an AVX2-only EPYC gave 0.00098 and 54 %, so either bound fails it.
    expect(meanKl).toBeLessThan(0.0001);
    expect(top1).toBeGreaterThanOrEqual(0.9);
  });

  it('answers a batch exactly as each request alone', async () => {
    const engine = await EngineGenerator.load({
      id: 'tiny-int8',
      dir: TINY_MODEL_DIR,
      intraOpThreads: 1,
      maxBatchSize: 8,
      maxCachedTokens: 4096,
      cacheDir,
      precision: 'int8',
    });
    try {
      const requests = PROMPTS.map((p) => ({ promptIds: engine.tokenizer.encode(p), maxNewTokens: 12 }));
      const alone = [];
      for (const r of requests) alone.push((await engine.stream(r)).text);
      const together = await Promise.all(requests.map((r) => engine.stream(r)));
      expect(together.map((t) => t.text)).toEqual(alone);
    } finally {
      await engine.close();
    }
  });
});
