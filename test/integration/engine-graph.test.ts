import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, cp, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureEngineGraph } from '../../src/inference/engine-graph-converter.js';
import { OnnxSession, type HostTensor } from '../../src/inference/onnx-session.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { logitsAt, maxAbsDiff, runGpt2, type Gpt2Shape } from '../helpers/gpt2-reference.js';

const SHAPE: Gpt2Shape = { nLayer: 2, nHead: 4, headDim: 16, vocab: 50257 };
const H = 4;
const D = 16;
const i64 = (v: number[], dims: number[]): HostTensor => ({
  type: 'int64',
  data: BigInt64Array.from(v.map(BigInt)),
  dims,
});
const f32 = (data: Float32Array, dims: number[]): HostTensor => ({ type: 'float32', data, dims });

/** Reorders the slots (axis 2) of a [B, H, S, D] tensor: out slot j = in slot perm[j]. */
function permuteSlots(t: HostTensor, perm: number[]): Float32Array {
  const [B, Hh, S, Dd] = t.dims;
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hh; h++)
      for (let j = 0; j < S; j++) {
        out.set(
          src.subarray(((b * Hh + h) * S + perm[j]) * Dd, ((b * Hh + h) * S + perm[j] + 1) * Dd),
          ((b * Hh + h) * S + j) * Dd,
        );
      }
  return out;
}

/**
 * Makes `dir` a read-only view of `source`: a read-only bind mount for root (whom file modes do not stop, as in
 * containers and CI here), file modes otherwise. Returns the undo.
 */
async function readOnlyView(source: string, dir: string): Promise<() => Promise<void>> {
  if (process.getuid?.() === 0) {
    await mkdir(dir);
    execFileSync('mount', ['--bind', source, dir]);
    execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
    return async () => void execFileSync('umount', [dir]);
  }
  await cp(source, dir, { recursive: true });
  execFileSync('chmod', ['-R', 'a-w', dir]);
  return async () => void execFileSync('chmod', ['-R', 'u+w', dir]);
}

let tmp: string;
let standard: OnnxSession;
let engine: OnnxSession;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ava-engine-graph-'));
  await cp(TINY_MODEL_DIR, path.join(tmp, 'tiny'), { recursive: true });
  standard = await OnnxSession.open(path.join(tmp, 'tiny/onnx/model.onnx'), { intraOpThreads: 1 });
  engine = await OnnxSession.open((await ensureEngineGraph(path.join(tmp, 'tiny'), path.join(tmp, 'cache'))).path, {
    intraOpThreads: 1,
  });
});
afterAll(async () => {
  await standard.close();
  await engine.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('engine graph rewritten from a standard export', () => {
  it('is converted once into the cache folder and reused while the source graph is unchanged', async () => {
    const dir = path.join(tmp, 'tiny');
    const first = await ensureEngineGraph(dir, path.join(tmp, 'cache'));
    const converted = (await stat(first.path)).mtimeMs;
    const again = await ensureEngineGraph(dir, path.join(tmp, 'cache'));
    expect(again).toEqual(first);
    expect((await stat(again.path)).mtimeMs).toBe(converted);
    expect(engine.outputNames).toEqual(['new.0.key', 'new.0.value', 'new.1.key', 'new.1.value', 'logits']);
  });

  it('loads from a read-only model folder, writing only to its cache folder, with processes converting at once', async () => {
    const source = path.join(tmp, 'readonly-source');
    await cp(TINY_MODEL_DIR, source, { recursive: true });
    const dir = path.join(tmp, 'readonly');
    const release = await readOnlyView(source, dir);
    const listing = async () => (await readdir(dir, { recursive: true })).sort();
    const before = await listing();
    try {
      await expect(writeFile(path.join(dir, 'onnx', 'probe'), 'x')).rejects.toThrow(/EROFS|EACCES/);
      const cache = path.join(tmp, 'fresh-cache');
      // Two loads at once (two worker processes sharing a cache volume): unique temporary names, one atomic result.
      const [a, b] = await Promise.all([ensureEngineGraph(dir, cache), ensureEngineGraph(dir, cache)]);
      expect(a).toEqual(b);
      expect(await readdir(cache)).toEqual([path.basename(a.path)]);
      const session = await OnnxSession.open(a.path, { intraOpThreads: 1 });
      await session.close();
      expect(await listing()).toEqual(before);
    } finally {
      await release();
    }
  });

  it("gives the original graph's logits and keys/values in prefill and in a decode step through its cache", async () => {
    const rows = [
      [15496, 11, 703, 389, 345, 30],
      [40, 765, 257],
    ];
    const T = 6;
    const ids = rows.map((r) => [...Array(T - r.length).fill(50256), ...r]);
    const mask = rows.map((r) => [...Array(T - r.length).fill(0), ...r.map(() => 1)]);
    const pos = rows.map((r) => [...Array(T - r.length).fill(0), ...r.map((_, i) => i)]);
    const ref = await runGpt2(standard, SHAPE, ids, mask, pos);

    const empty = f32(new Float32Array(0), [2, H, 0, D]);
    const feeds: Record<string, HostTensor> = {
      input_ids: i64(ids.flat(), [2, T]),
      attention_mask: i64(mask.flat(), [2, T]),
      position_ids: i64(pos.flat(), [2, T]),
    };
    for (let i = 0; i < 2; i++) feeds[`cache.${i}.key`] = feeds[`cache.${i}.value`] = empty;
    const pre = await engine.run(feeds);
    expect(pre.logits.dims).toEqual([2, 50257]);
    for (let b = 0; b < 2; b++) {
      expect(
        maxAbsDiff(
          (pre.logits.data as Float32Array).subarray(b * 50257, (b + 1) * 50257),
          logitsAt(ref.logits, b, T - 1),
        ),
      ).toBeLessThan(1e-4);
    }
    expect(
      maxAbsDiff(pre['new.1.value'].data as Float32Array, ref['present.1.value'].data as Float32Array),
    ).toBeLessThan(1e-4);

    // Decode one token; the engine gets the cache with its slots reversed (order must not matter).
    const next = [[262], [11]];
    const ref2 = await runGpt2(
      standard,
      SHAPE,
      next,
      mask.map((m) => [...m, 1]),
      rows.map((r) => [r.length]),
      ref,
    );
    const perm = Array.from({ length: T }, (_, j) => T - 1 - j);
    const feeds2: Record<string, HostTensor> = {
      input_ids: i64(next.flat(), [2, 1]),
      attention_mask: i64(
        mask.flatMap((m) => [...perm.map((j) => m[j]), 1]),
        [2, T + 1],
      ),
      position_ids: i64(
        rows.map((r) => r.length),
        [2, 1],
      ),
    };
    for (let i = 0; i < 2; i++) {
      feeds2[`cache.${i}.key`] = f32(permuteSlots(ref[`present.${i}.key`], perm), [2, H, T, D]);
      feeds2[`cache.${i}.value`] = f32(permuteSlots(ref[`present.${i}.value`], perm), [2, H, T, D]);
    }
    const dec = await engine.run(feeds2);
    for (let b = 0; b < 2; b++) {
      expect(
        maxAbsDiff((dec.logits.data as Float32Array).subarray(b * 50257, (b + 1) * 50257), logitsAt(ref2.logits, b, 0)),
      ).toBeLessThan(1e-4);
    }
    const present = ref2['present.0.key'].data as Float32Array; // [2, H, T + 1, D]
    const lastSlot = new Float32Array(2 * H * D);
    for (let bh = 0; bh < 2 * H; bh++)
      lastSlot.set(present.subarray((bh * (T + 1) + T) * D, (bh * (T + 1) + T + 1) * D), bh * D);
    expect(maxAbsDiff(dec['new.0.key'].data as Float32Array, lastSlot)).toBeLessThan(1e-4);
  });
});
