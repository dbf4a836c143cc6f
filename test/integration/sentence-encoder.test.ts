import { copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { env, pipeline, type FeatureExtractionPipeline } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openEncoder } from '../../src/embedding/load-encoder.js';
import { SentenceEncoder } from '../../src/embedding/sentence-encoder.js';
import { chooseInt8Kernel } from '../../src/inference/int8-kernel.js';
import type { Int8Formulation } from '../../src/models/int8-matmul.js';
import { convertSentenceEncoder } from '../../src/models/encoder-converter.js';
import { ENCODER_DIR, ROOT } from '../helpers/paths.js';
import { silentLog } from '../helpers/services.js';

/** Embeddings of 20 sentences (English and Chinese) made by sentence-transformers 6.2.0 from the same weights. */
const reference = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/minilm-reference.json'), 'utf8')) as {
  sentences: string[];
  embeddings: number[][];
};
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
};

let encoder: SentenceEncoder;
const scratch: string[] = [];
/** A fresh folder removed after the tests: int8 graphs are built in it, not taken from a cache. */
const scratchDir = () => {
  const dir = path.join(os.tmpdir(), `ava-encoder-int8-${process.pid}-${scratch.length}`);
  scratch.push(dir);
  return dir;
};
beforeAll(async () => {
  encoder = await SentenceEncoder.load(ENCODER_DIR, { intraOpThreads: 1 });
});
afterAll(async () => {
  await encoder?.close();
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('the sentence encoder converted from all-MiniLM-L6-v2 (safetensors → ONNX by this project)', () => {
  it('gives every reference sentence the embedding sentence-transformers gives it (cosine ≥ 0.999), batched or alone', async () => {
    const together = await encoder.embed(reference.sentences);
    const sims = together.map((v, i) => cosine(v, reference.embeddings[i]));
    console.info(`cosine to sentence-transformers: min ${Math.min(...sims).toFixed(6)} over ${sims.length} sentences`);
    for (const [i, s] of sims.entries()) expect(s, reference.sentences[i]).toBeGreaterThanOrEqual(0.999);
    const [alone] = await encoder.embed([reference.sentences[3]]);
    expect(cosine(alone, together[3])).toBeGreaterThan(0.99999);
    expect(encoder.dims).toBe(384);
  });

  it('in int8, in either integer kernel, stays within cosine 0.99 of sentence-transformers and embeds a text the same in any batch', async () => {
    const cpu = await chooseInt8Kernel('auto');
    const forms: Int8Formulation[] = cpu.formulation === 'u8s8' ? ['u8s8', 'u8u8'] : ['u8u8'];
    const results: Float32Array[][] = [];
    for (const formulation of forms) {
      const int8 = await SentenceEncoder.load(ENCODER_DIR, {
        intraOpThreads: 1,
        int8: { formulation, cacheDir: scratchDir() },
      });
      try {
        expect(int8.model.revision).toBe(`${encoder.model.revision}+int8-${formulation}`);
        const together = await int8.embed(reference.sentences);
        const sims = together.map((v, i) => cosine(v, reference.embeddings[i]));
        console.info(
          `int8 (${formulation}) cosine to sentence-transformers: min ${Math.min(...sims).toFixed(4)}, mean ${(sims.reduce((a, b) => a + b, 0) / sims.length).toFixed(4)} over ${sims.length} sentences`,
        );
        for (const [i, s] of sims.entries()) expect(s, reference.sentences[i]).toBeGreaterThanOrEqual(0.99);
        // Each token is quantized on its own: the padding of a batch changes nothing but float rounding.
        const alone = await int8.embed([reference.sentences[3], reference.sentences[0]]);
        expect(cosine(alone[0], together[3])).toBeGreaterThan(0.99999);
        expect(cosine(alone[1], together[0])).toBeGreaterThan(0.99999);
        results.push(together);
      } finally {
        await int8.close();
      }
    }
    // Both kernels carry the same integers.
    if (results.length === 2)
      for (const [i, v] of results[0].entries()) expect(cosine(v, results[1][i])).toBeGreaterThan(0.99999);
  });

  it('is opened in int8 where its int8 form can be built, and falls back to float32 where it cannot', async () => {
    const config = (cacheDir: string) =>
      loadConfig({}, { AVA_ENCODER_PRECISION: 'int8', AVA_ENGINE_CACHE_DIR: cacheDir, AVA_INTRA_OP_THREADS: '1' });
    const int8 = await openEncoder(ENCODER_DIR, config(scratchDir()), silentLog);
    try {
      expect(int8.model.revision).toMatch(/\+int8-u8(s8|u8)$/);
    } finally {
      await int8.close();
    }
    // A cache folder that cannot be made (under a file): no int8 graph, so the float32 encoder serves, unchanged.
    const blocked = path.join(scratchDir(), 'file');
    await mkdir(path.dirname(blocked), { recursive: true });
    await writeFile(blocked, '');
    const fallback = await openEncoder(ENCODER_DIR, config(path.join(blocked, 'cache')), silentLog);
    try {
      expect(fallback.model.revision).toBe(encoder.model.revision);
      const [a, b] = [await fallback.embed(reference.sentences), await encoder.embed(reference.sentences)];
      for (const [i, v] of a.entries()) expect(cosine(v, b[i])).toBeGreaterThan(0.999999);
    } finally {
      await fallback.close();
    }
  });

  it("is loaded by transformers.js's feature-extraction pipeline as it is", async () => {
    env.allowRemoteModels = false;
    const extractor = (await pipeline('feature-extraction', ENCODER_DIR, {
      dtype: 'fp32',
      local_files_only: true,
    })) as FeatureExtractionPipeline;
    try {
      const out = await extractor(reference.sentences.slice(0, 6), { pooling: 'mean', normalize: true });
      const rows = out.tolist() as number[][];
      for (let i = 0; i < rows.length; i++)
        expect(cosine(rows[i], reference.embeddings[i]), reference.sentences[i]).toBeGreaterThanOrEqual(0.999);
    } finally {
      await extractor.dispose();
    }
  });

  it('refuses a corrupt or truncated model at load and at conversion, naming the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-encoder-bad-'));
    scratch.push(dir);
    const bad = path.join(dir, 'model');
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      await copyFile(path.join(ENCODER_DIR, f), path.join(dir, f)).catch(() => undefined);
    }
    await expect(SentenceEncoder.load(dir)).rejects.toMatchObject({
      code: 'ERR_MODEL_LOAD',
      message: expect.stringContaining('has no onnx/model.onnx'),
    });
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'onnx')));
    await writeFile(path.join(dir, 'onnx', 'model.onnx'), 'not a model');
    await expect(SentenceEncoder.load(dir)).rejects.toMatchObject({
      code: 'ERR_MODEL_LOAD',
      message: expect.stringContaining('model.onnx'),
    });
    // Weights cut short: the converter names the file and the tensor it could not read.
    const weights = path.join(dir, 'model.safetensors');
    await writeFile(weights, Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a":1}        ')]));
    await expect(convertSentenceEncoder({ from: dir, outDir: bad })).rejects.toMatchObject({
      message: expect.stringMatching(/model\.safetensors/),
    });
    await truncate(weights, 3);
    await expect(convertSentenceEncoder({ from: dir, outDir: bad })).rejects.toMatchObject({
      message: expect.stringMatching(/model\.safetensors.*shorter than its header/),
    });
  });
});
