import { readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SentenceEncoder } from '../../src/embedding/sentence-encoder.js';
import { chooseInt8Kernel } from '../../src/inference/int8-kernel.js';
import type { Int8Formulation } from '../../src/models/int8-matmul.js';
import { OnnxSession } from '../../src/inference/onnx-session.js';
import { ENCODER_SOURCES } from '../../src/models/encoder-sources.js';
import { fetchArtifact } from '../../src/models/maven-artifact.js';
import { ROOT, ZH_ENCODER_DIR } from '../helpers/paths.js';

/**
 * 20 sentences (17 Chinese) embedded by the jar's own int8 graph through onnxruntime, and by BERT written out in numpy
 * on the same weights dequantized (test/fixtures/tools/bge-zh-reference.py).
 */
const reference = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/bge-zh-reference.json'), 'utf8')) as {
  sentences: string[];
  embeddings: number[][];
  embeddings_dequantized: number[][];
};
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
};
const least = (sims: number[]) => Math.min(...sims).toFixed(5);

let encoder: SentenceEncoder;
const cacheDir = path.join(os.tmpdir(), `ava-zh-encoder-int8-${process.pid}`);
beforeAll(async () => {
  encoder = await SentenceEncoder.load(ZH_ENCODER_DIR, { intraOpThreads: 1 });
});
afterAll(async () => {
  await encoder?.close();
  await rm(cacheDir, { recursive: true, force: true });
});

describe('the Chinese sentence encoder converted from bge-small-zh-v1.5 (Maven jar, int8 ONNX → float32 ONNX)', () => {
  it('equals BERT in numpy on the dequantized weights, and the jar graph within its int8 noise, batched or alone', async () => {
    expect(encoder.dims).toBe(512);
    const together = await encoder.embed(reference.sentences);
    const exact = together.map((v, i) => cosine(v, reference.embeddings_dequantized[i]));
    const jar = together.map((v, i) => cosine(v, reference.embeddings[i]));
    console.info(`cosine to numpy: least ${least(exact)}; to the jar's int8 graph: least ${least(jar)}`);
    for (const [i, s] of exact.entries()) expect(s, reference.sentences[i]).toBeGreaterThanOrEqual(0.9999);
    for (const [i, s] of jar.entries()) expect(s, reference.sentences[i]).toBeGreaterThanOrEqual(0.99);
    const [alone] = await encoder.embed([reference.sentences[5]]);
    expect(cosine(alone, together[5])).toBeGreaterThan(0.99999);
  });

  it('pools the [CLS] state: its embedding is not the mean of the token states', async () => {
    const session = await OnnxSession.open(path.join(ZH_ENCODER_DIR, 'onnx', 'model.onnx'), { intraOpThreads: 1 });
    try {
      // [CLS] 你 好 [SEP] in the jar's vocabulary.
      const ids = new BigInt64Array([101n, 872n, 1962n, 102n]);
      const ones = new BigInt64Array([1n, 1n, 1n, 1n]);
      const out = await session.run(
        {
          input_ids: { type: 'int64', data: ids, dims: [1, 4] },
          attention_mask: { type: 'int64', data: ones, dims: [1, 4] },
          token_type_ids: { type: 'int64', data: new BigInt64Array(4), dims: [1, 4] },
        },
        ['last_hidden_state', 'sentence_embedding'],
      );
      const states = out.last_hidden_state.data as Float32Array;
      const first = states.slice(0, 512);
      const norm = Math.hypot(...first);
      expect(
        cosine(
          first.map((x) => x / norm),
          out.sentence_embedding.data as Float32Array,
        ),
      ).toBeGreaterThan(0.99999);
    } finally {
      await session.close();
    }
  });

  it('in int8, in either integer kernel, stays within cosine 0.99 of float32', async () => {
    const cpu = await chooseInt8Kernel('auto');
    const forms: Int8Formulation[] = cpu.formulation === 'u8s8' ? ['u8s8', 'u8u8'] : ['u8u8'];
    const exact = await encoder.embed(reference.sentences);
    for (const formulation of forms) {
      const int8 = await SentenceEncoder.load(ZH_ENCODER_DIR, { intraOpThreads: 1, int8: { formulation, cacheDir } });
      try {
        const sims = (await int8.embed(reference.sentences)).map((v, i) => cosine(v, exact[i]));
        console.info(`int8 (${formulation}) cosine to float32: least ${least(sims)}`);
        for (const [i, s] of sims.entries()) expect(s, reference.sentences[i]).toBeGreaterThanOrEqual(0.99);
      } finally {
        await int8.close();
      }
    }
  });

  it("is fetched by Maven's own client and refused when its jar's sha256 is not the pinned one", async () => {
    const pinned = ENCODER_SOURCES['bge-small-zh-v1.5'].source.artifact;
    const fetched = await fetchArtifact(pinned, { cacheDir });
    expect(fetched.file).toBe(path.join(cacheDir, `${pinned.sha256}.jar`));
    const wrong = { ...pinned, sha256: '0'.repeat(64) };
    await expect(fetchArtifact(wrong, { cacheDir })).rejects.toMatchObject({
      message: expect.stringMatching(/fetched with sha256 7cc5f4b1.*expected 0{64}; not used/),
    });
    await expect(readdir(cacheDir)).resolves.not.toContain(`${'0'.repeat(64)}.jar`);
  });
});
