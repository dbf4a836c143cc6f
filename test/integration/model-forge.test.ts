import { mkdtemp, readFile, readdir, rm, unlink, cp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AutoTokenizer,
  env,
  pipeline,
  type PreTrainedTokenizer,
  type TextGenerationPipeline,
} from '@huggingface/transformers';
import { encode as referenceEncode } from 'gpt-3-encoder';
import { forgeModel } from '../../src/models/model-forge.js';
import { resolveModel } from '../../src/models/model-resolver.js';
import { OnnxSession } from '../../src/inference/onnx-session.js';
import { ModelForgeError, ModelLoadError, ModelResolveError } from '../../src/errors/errors.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { logitsAt, maxAbsDiff, runGpt2, type Gpt2Shape } from '../helpers/gpt2-reference.js';

const SHAPE: Gpt2Shape = { nLayer: 2, nHead: 4, headDim: 16, vocab: 50257 };
const PROMPTS = [
  'Hello, how are you?',
  'What is the weather like today',
  '你好，我是虚拟助手',
  'The quick brown fox',
  'Where is my order 1234?',
  'I want a refund for my shoes',
  'Tell me a joke',
  '请问你们几点开门？',
  'Can I change my delivery address',
  'Thanks a lot!',
  'Bonjour le monde',
  'Open the pod bay doors, please',
];

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ava-forge-'));
  env.allowRemoteModels = false;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('model forge', () => {
  it('writes a complete model directory, byte-identical for the same seed and different for another', async () => {
    const a = await forgeModel({ preset: 'tiny', outDir: path.join(tmp, 'a'), seed: 7 });
    const b = await forgeModel({ preset: 'tiny', outDir: path.join(tmp, 'b'), seed: 7 });
    const c = await forgeModel({ preset: 'tiny', outDir: path.join(tmp, 'c'), seed: 8 });
    const files = [
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'onnx/model.onnx',
    ];
    for (const f of files) {
      expect(Buffer.compare(await readFile(path.join(a.outDir, f)), await readFile(path.join(b.outDir, f))), f).toBe(0);
    }
    expect(
      Buffer.compare(
        await readFile(path.join(a.outDir, 'onnx/model.onnx')),
        await readFile(path.join(c.outDir, 'onnx/model.onnx')),
      ),
    ).not.toBe(0);
    const config = JSON.parse(await readFile(path.join(a.outDir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model_type: 'gpt2',
      n_layer: 2,
      n_head: 4,
      n_embd: 64,
      n_positions: 1024,
      vocab_size: 50257,
      bos_token_id: 50256,
      eos_token_id: 50256,
    });
    expect(a.parameters).toBe(3_382_080);
  });

  it('refuses bad input with a clear error and leaves nothing half-written', async () => {
    await expect(forgeModel({ preset: 'huge', outDir: path.join(tmp, 'x') })).rejects.toThrow(
      /unknown preset "huge".*/,
    );
    await expect(forgeModel({ preset: 'tiny', outDir: path.join(tmp, 'a') })).rejects.toThrow(/already exists/);
    await expect(forgeModel({ preset: 'tiny', outDir: '/etc/hostname/model' })).rejects.toBeInstanceOf(ModelForgeError);
    await expect(forgeModel({ preset: 'tiny', outDir: path.join(tmp, 'y'), seed: -1 })).rejects.toThrow(/seed/);
    const leftovers = (await readdir(tmp)).filter((f) => f.includes('forging'));
    expect(leftovers).toEqual([]);
  });
});

describe('model resolution', () => {
  it('resolves a directory path or a name under the models folder, offline by default', async () => {
    const byPath = await resolveModel(TINY_MODEL_DIR, { modelsDir: '/nonexistent' });
    expect(byPath.dir).toBe(TINY_MODEL_DIR);
    const byName = await resolveModel('tiny', { modelsDir: path.dirname(TINY_MODEL_DIR) });
    expect(byName.dir).toBe(TINY_MODEL_DIR);
    const missing = resolveModel('Xenova/gpt2', { modelsDir: tmp });
    await expect(missing).rejects.toBeInstanceOf(ModelResolveError);
    await expect(missing).rejects.toMatchObject({ hint: expect.stringMatching(/models:forge.*models:fetch/) });
  });

  it('names the missing file of a broken model directory', async () => {
    const broken = path.join(tmp, 'broken');
    await cp(TINY_MODEL_DIR, broken, { recursive: true });
    await unlink(path.join(broken, 'tokenizer.json'));
    const err = resolveModel(broken, { modelsDir: tmp });
    await expect(err).rejects.toBeInstanceOf(ModelLoadError);
    await expect(err).rejects.toThrow(/missing tokenizer.json/);
  });
});

describe('forged tiny model in ONNX Runtime', () => {
  let session: OnnxSession;
  beforeAll(async () => {
    session = await OnnxSession.open(path.join(TINY_MODEL_DIR, 'onnx/model.onnx'), { intraOpThreads: 1 });
  });
  afterAll(async () => session.close());

  it('opens with the default thread count of the runtime too', async () => {
    const defaults = await OnnxSession.open(path.join(TINY_MODEL_DIR, 'onnx/model.onnx'));
    expect(defaults.inputNames).toContain('input_ids');
    await defaults.close();
  });

  it('has the inputs and outputs of the standard text-generation-with-past export', () => {
    expect(session.inputNames).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      'past_key_values.0.key',
      'past_key_values.0.value',
      'past_key_values.1.key',
      'past_key_values.1.value',
    ]);
    expect(session.outputNames).toEqual([
      'present.0.key',
      'present.0.value',
      'present.1.key',
      'present.1.value',
      'logits',
    ]);
  });

  it('gives the same logits in one pass as token by token through the KV cache', async () => {
    const ids = [464, 2068, 7586, 21831, 18045, 625, 262, 16931];
    const full = await runGpt2(session, SHAPE, [ids], [ids.map(() => 1)], [ids.map((_, i) => i)]);
    let past: Awaited<ReturnType<typeof runGpt2>> | undefined;
    let worst = 0;
    for (let t = 0; t < ids.length; t++) {
      const step = await runGpt2(session, SHAPE, [[ids[t]]], [Array(t + 1).fill(1)], [[t]], past);
      expect(step['present.0.key'].dims).toEqual([1, 4, t + 1, 16]);
      worst = Math.max(worst, maxAbsDiff(logitsAt(step.logits, 0, 0), logitsAt(full.logits, 0, t)));
      past = step;
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it('gives a left-padded batch the same last-token logits as each prompt alone', async () => {
    const rows = [[15496, 11, 703, 389, 345, 30], [40, 765, 257, 12929], [10919]];
    const T = Math.max(...rows.map((r) => r.length));
    const ids = rows.map((r) => [...Array(T - r.length).fill(50256), ...r]);
    const mask = rows.map((r) => [...Array(T - r.length).fill(0), ...r.map(() => 1)]);
    const pos = rows.map((r) => [...Array(T - r.length).fill(1), ...r.map((_, i) => i)]);
    const batch = await runGpt2(session, SHAPE, ids, mask, pos);
    for (let b = 0; b < rows.length; b++) {
      const alone = await runGpt2(session, SHAPE, [rows[b]], [rows[b].map(() => 1)], [rows[b].map((_, i) => i)]);
      expect(maxAbsDiff(logitsAt(batch.logits, b, T - 1), logitsAt(alone.logits, 0, rows[b].length - 1))).toBeLessThan(
        1e-4,
      );
    }
  });
});

describe('forged tiny model in transformers.js', () => {
  let generator: TextGenerationPipeline;
  let tokenizer: PreTrainedTokenizer;
  beforeAll(async () => {
    generator = (await pipeline('text-generation', TINY_MODEL_DIR, {
      dtype: 'fp32',
      local_files_only: true,
    })) as TextGenerationPipeline;
    tokenizer = await AutoTokenizer.from_pretrained(TINY_MODEL_DIR, { local_files_only: true });
  });
  afterAll(async () => generator.dispose());

  const continuation = async (prompt: string) => {
    const out = (await generator(prompt, { max_new_tokens: 12, do_sample: false })) as Array<{
      generated_text: string;
    }>;
    return out[0].generated_text.slice(prompt.length);
  };

  it('generates deterministically with greedy decoding', async () => {
    expect(await continuation(PROMPTS[0])).toBe(await continuation(PROMPTS[0]));
  });

  it('gives 12 different prompts 12 different continuations that are not repetitions', async () => {
    const outs = [];
    for (const p of PROMPTS) outs.push(await continuation(p));
    expect(new Set(outs).size).toBe(12);
    for (const o of outs) {
      const ids = tokenizer.encode(o, { add_special_tokens: false });
      expect(new Set(ids).size, `"${o}" repeats itself`).toBeGreaterThanOrEqual(4);
    }
  });

  it('round-trips English, emoji and Chinese and matches the reference GPT-2 ids', () => {
    for (const text of [
      'Hello world',
      ' Hello world',
      'The café costs €5 😀👍🏽',
      '你好，我是虚拟助手',
      'mixed 中文 and English!\n\ttabs',
    ]) {
      const ids = tokenizer.encode(text, { add_special_tokens: false });
      expect(ids, text).toEqual(referenceEncode(text));
      expect(tokenizer.decode(ids)).toBe(text);
    }
    expect(tokenizer.encode('Hello world', { add_special_tokens: false })).toEqual([15496, 995]);
    expect(tokenizer.encode('<|endoftext|>', { add_special_tokens: false })).toEqual([50256]);
  });
});
