import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { Gpt2Engine } from '../../src/inference/gpt2-engine.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';

const PROMPTS = ['Hi', 'Where is my order 1234? It has been two weeks.', '你好', 'Can I pay by card?', 'The quick brown fox jumps over the lazy dog.', 'Tell me about your return policy for shoes, please.'];
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

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}
const argmax = (x: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
};

/** Next-token logits at every step when both engines are fed the fp32 engine's own greedy continuation. */
async function teacherForced(engine: Gpt2Engine, prompt: number[], continuation: number[]): Promise<Float32Array[]> {
  const out = [(await engine.prefill([{ handle: 1, tokens: prompt, slots: prompt.length + continuation.length + 1 }]))[0]];
  for (const token of continuation) out.push((await engine.decode(new Map([[1, token]]))).get(1)!);
  engine.release(1);
  return out;
}

describe('the int8 engine (per-column int8 weights, per-token int8 activations)', () => {
  it('stays close to the float32 engine under teacher forcing: mean KL and top-1 agreement, measured and bounded', async () => {
    const fp32 = await Gpt2Engine.load(TINY_MODEL_DIR, { intraOpThreads: 1, maxCachedTokens: 4096, cacheDir });
    const int8 = await Gpt2Engine.load(TINY_MODEL_DIR, { intraOpThreads: 1, maxCachedTokens: 4096, cacheDir, precision: 'int8' });
    let kl = 0;
    let agree = 0;
    let steps = 0;
    try {
      for (const text of PROMPTS) {
        const prompt = tokenizer.encode(text);
        // The continuation both are fed: the float32 engine's greedy choice at each step.
        const continuation: number[] = [];
        let logits = (await fp32.prefill([{ handle: 1, tokens: prompt, slots: prompt.length + STEPS + 1 }]))[0];
        for (let s = 0; s < STEPS; s++) {
          continuation.push(argmax(logits));
          logits = (await fp32.decode(new Map([[1, continuation[s]]]))).get(1)!;
        }
        fp32.release(1);
        const [a, b] = [await teacherForced(fp32, prompt, continuation), await teacherForced(int8, prompt, continuation)];
        for (let s = 0; s < a.length; s++) {
          const p = softmax(a[s]);
          const q = softmax(b[s]);
          for (let i = 0; i < p.length; i++) if (p[i] > 0) kl += p[i] * Math.log(p[i] / Math.max(q[i], 1e-30));
          if (argmax(a[s]) === argmax(b[s])) agree++;
          steps++;
        }
      }
    } finally {
      await fp32.close();
      await int8.close();
    }
    const meanKl = kl / steps;
    console.info(`int8 vs fp32 (tiny model, ${steps} teacher-forced steps): mean KL ${meanKl.toFixed(5)} nats, top-1 agreement ${((agree / steps) * 100).toFixed(1)}%`);
    expect(meanKl).toBeLessThan(0.001);
    expect(agree / steps).toBeGreaterThanOrEqual(0.9);
  });

  it('answers a batch exactly as each request alone', async () => {
    const engine = await EngineGenerator.load({ id: 'tiny-int8', dir: TINY_MODEL_DIR, intraOpThreads: 1, maxBatchSize: 8, maxCachedTokens: 4096, cacheDir, precision: 'int8' });
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
