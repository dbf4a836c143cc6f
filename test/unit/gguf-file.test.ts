import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../src/errors/errors.js';
import { dequantize, GgufFile } from '../../src/models/gguf-file.js';
import { unpermuteRope } from '../../src/models/llama-weights.js';
import { floatToHalf, quantizeBlocks, writeGguf } from '../helpers/gguf-writer.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ava-gguf-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** One block laid out by hand, as ggml's block_q4_0 / block_q4_1 / block_q8_0 structs are. */
function block(header: number[], body: number[]): Buffer {
  const b = Buffer.alloc(header.length * 2 + body.length);
  header.forEach((h, i) => b.writeUInt16LE(floatToHalf(h), i * 2));
  body.forEach((v, i) => b.writeUInt8(v & 0xff, header.length * 2 + i));
  return b;
}

describe('GGUF reader', () => {
  it('dequantizes Q4_0, Q4_1 and Q8_0 blocks as ggml lays them out (low nibbles are elements 0-15)', () => {
    const nibbles = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    // Q4_1: w = d·q + m, d = 0.5, m = −1.
    const q41 = dequantize('Q4_1', block([0.5, -1], nibbles));
    for (let j = 0; j < 16; j++) {
      expect(q41[j]).toBe(0.5 * j - 1);
      expect(q41[j + 16]).toBe(0.5 * (15 - j) - 1);
    }
    // Q4_0: w = d·(q − 8), d = 0.25.
    const q40 = dequantize('Q4_0', block([0.25], nibbles));
    expect(q40[0]).toBe(-2);
    expect(q40[15]).toBe(0.25 * 7);
    expect(q40[16]).toBe(0.25 * 7);
    // Q8_0: w = d·q, signed bytes.
    const q8 = dequantize(
      'Q8_0',
      block(
        [0.125],
        Array.from({ length: 32 }, (_, j) => j - 16),
      ),
    );
    expect(Array.from(q8.subarray(0, 3))).toEqual([-2, -1.875, -1.75]);
    expect(q8[31]).toBe(0.125 * 15);
    // F16 and BF16 widen exactly.
    expect(Array.from(dequantize('F16', Buffer.from(Uint16Array.of(0x3c00, 0xc000, 0x3555).buffer)))).toEqual([
      1, -2, 0.333251953125,
    ]);
    expect(Array.from(dequantize('BF16', Buffer.from(Uint16Array.of(0x3f80, 0xc040).buffer)))).toEqual([1, -3]);
  });

  it('reads metadata and tensors of a written file; quantized values stay within their step', async () => {
    const values = Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
    const types = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8 } as const;
    const file = path.join(tmp, 'm.gguf');
    await writeGguf(
      file,
      {
        'general.architecture': { type: 'string', value: 'llama' },
        'llama.block_count': { type: 'u32', value: 3 },
        'llama.rope.freq_base': { type: 'f32', value: 10_000 },
        'tokenizer.ggml.tokens': { type: 'strings', value: ['a', 'b', '<|im_end|>'] },
        'tokenizer.ggml.token_type': { type: 'i32s', value: [1, 1, 3] },
        'tokenizer.ggml.add_bos_token': { type: 'bool', value: false },
      },
      Object.entries(types).map(([t, id]) => ({
        name: t,
        dims: [64, 4],
        type: id,
        data: quantizeBlocks(t as keyof typeof types, values),
      })),
    );
    const gguf = await GgufFile.open(file);
    expect(gguf.get('general.architecture', 'string')).toBe('llama');
    expect(gguf.get('llama.block_count', 'number')).toBe(3);
    expect(gguf.get('tokenizer.ggml.tokens', 'array')).toEqual(['a', 'b', '<|im_end|>']);
    expect(gguf.optional('tokenizer.ggml.token_type')).toEqual([1, 1, 3]);
    expect(gguf.optional('tokenizer.ggml.add_bos_token')).toBe(false);
    expect(() => gguf.get('llama.block_count', 'string')).toThrow(/llama.block_count is not a string/);
    expect(gguf.tensors.get('Q4_1')).toMatchObject({ type: 'Q4_1', dims: [64, 4] });
    // Q4_0's 16 levels are −8..7 steps of |max| / 8, so the extreme of the other sign may clip by one step.
    const step = { F32: 0, F16: 0.005, Q8_0: 7 / 127, Q4_0: 2 * (7 / 8), Q4_1: 14 / 15 };
    for (const t of Object.keys(types) as Array<keyof typeof types>) {
      const back = gguf.float32(t);
      expect(back).toHaveLength(values.length);
      let worst = 0;
      back.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - values[i]))));
      expect(worst, t).toBeLessThanOrEqual(step[t] * 0.51 + 1e-6);
    }
  });

  it('refuses a file that is not GGUF, one cut short and a tensor type it does not know, naming the file', async () => {
    const bad = path.join(tmp, 'bad.gguf');
    await writeFile(bad, 'not a model');
    await expect(GgufFile.open(bad)).rejects.toThrow(
      /bad\.gguf is not a readable GGUF file: it does not start with the GGUF magic/,
    );
    const good = path.join(tmp, 'good.gguf');
    await writeGguf(good, { 'general.architecture': { type: 'string', value: 'llama' } }, [
      { name: 't', dims: [32], type: 8, data: quantizeBlocks('Q8_0', new Float32Array(32)) },
    ]);
    const bytes = await readFile(good);
    // The tensor's 34 bytes are padded to 64: cutting 40 cuts into them.
    await writeFile(bad, bytes.subarray(0, bytes.length - 40));
    await expect(GgufFile.open(bad)).rejects.toThrow(/tensor t \(34 bytes at \d+\) lies outside the file/);
    await writeFile(bad, bytes.subarray(0, 30));
    await expect(GgufFile.open(bad)).rejects.toThrow(ModelLoadError);
    await writeGguf(bad, {}, [{ name: 'q5', dims: [32], type: 6, data: new Uint8Array(22) }]);
    await expect(GgufFile.open(bad)).rejects.toThrow(
      /tensor q5 has ggml type 6, which this reader does not dequantize/,
    );
  });

  it("undoes llama.cpp's RoPE permutation of q and k rows", () => {
    const heads = 3;
    const D = 8;
    const cols = 5;
    const hf = Float32Array.from({ length: heads * D * cols }, (_, i) => i);
    // llama.cpp's convert: w.reshape(heads, 2, D/2, cols).swapaxes(1, 2).
    const permuted = new Float32Array(hf.length);
    for (let h = 0; h < heads; h++)
      for (let s = 0; s < 2; s++)
        for (let j = 0; j < D / 2; j++)
          for (let c = 0; c < cols; c++)
            permuted[((h * (D / 2) + j) * 2 + s) * cols + c] = hf[((h * 2 + s) * (D / 2) + j) * cols + c];
    expect(Array.from(unpermuteRope(permuted, heads, D, cols))).toEqual(Array.from(hf));
  });
});
