import { writeFile } from 'node:fs/promises';

/** A metadata value to write, with its GGUF type. */
export type GgufEntry =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: string[] }
  | { type: 'i32s'; value: number[] };

/** A tensor to write: its GGUF dims (innermost first), ggml type number and raw data. */
export interface GgufTensor {
  name: string;
  dims: number[];
  type: number;
  data: Uint8Array;
}

const TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 };

/**
 * Writes a GGUF v3 file as llama.cpp lays it out (header, metadata, tensor infos, data aligned to 32 bytes), for tests
 * of the reader and of the Llama path without downloading a model.
 */
export async function writeGguf(
  file: string,
  metadata: Record<string, GgufEntry>,
  tensors: GgufTensor[],
): Promise<void> {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  const str = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    u64(bytes.length);
    parts.push(bytes);
  };
  u32(0x46554747);
  u32(3);
  u64(tensors.length);
  u64(Object.keys(metadata).length);
  for (const [key, e] of Object.entries(metadata)) {
    str(key);
    switch (e.type) {
      case 'u32':
        u32(TYPE.u32);
        u32(e.value);
        break;
      case 'f32': {
        u32(TYPE.f32);
        const b = Buffer.alloc(4);
        b.writeFloatLE(e.value);
        parts.push(b);
        break;
      }
      case 'bool':
        u32(TYPE.bool);
        parts.push(Buffer.of(e.value ? 1 : 0));
        break;
      case 'string':
        u32(TYPE.string);
        str(e.value);
        break;
      case 'strings':
        u32(TYPE.array);
        u32(TYPE.string);
        u64(e.value.length);
        for (const s of e.value) str(s);
        break;
      case 'i32s': {
        u32(TYPE.array);
        u32(TYPE.i32);
        u64(e.value.length);
        const b = Buffer.alloc(4 * e.value.length);
        e.value.forEach((v, i) => b.writeInt32LE(v, i * 4));
        parts.push(b);
        break;
      }
    }
  }
  let offset = 0;
  const align = (n: number) => Math.ceil(n / 32) * 32;
  for (const t of tensors) {
    str(t.name);
    u32(t.dims.length);
    for (const d of t.dims) u64(d);
    u32(t.type);
    u64(offset);
    offset = align(offset + t.data.length);
  }
  const header = Buffer.concat(parts);
  const start = align(header.length);
  const out = Buffer.alloc(start + offset);
  header.copy(out, 0);
  offset = 0;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, start + offset);
    offset = align(offset + t.data.length);
  }
  await writeFile(file, out);
}

/** IEEE half-precision bits of a number (round to nearest even; no subnormal tricks needed for test values). */
export function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  const round = mant & 0x1fff;
  mant >>= 13;
  let h = sign | (exp << 10) | mant;
  if (round > 0x1000 || (round === 0x1000 && mant & 1)) h++;
  return h;
}

/** ggml quantized blocks of a row-major float array, as llama.cpp's reference quantizers make them. */
export function quantizeBlocks(type: 'Q8_0' | 'Q4_0' | 'Q4_1' | 'F16' | 'F32', values: Float32Array): Uint8Array {
  if (type === 'F32')
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  if (type === 'F16') {
    const out = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => out.writeUInt16LE(floatToHalf(v), i * 2));
    return out;
  }
  const n = values.length / 32;
  const size = { Q8_0: 34, Q4_0: 18, Q4_1: 20 }[type];
  const out = Buffer.alloc(n * size);
  for (let b = 0; b < n; b++) {
    const x = values.subarray(b * 32, b * 32 + 32);
    const at = b * size;
    if (type === 'Q8_0') {
      const amax = Math.max(...x.map(Math.abs));
      const d = amax / 127;
      out.writeUInt16LE(floatToHalf(d), at);
      x.forEach((v, j) => out.writeInt8(d ? Math.round(v / d) : 0, at + 2 + j));
    } else if (type === 'Q4_0') {
      let max = 0;
      for (const v of x) if (Math.abs(v) > Math.abs(max)) max = v;
      const d = max / -8;
      const q = (v: number) => Math.min(15, Math.trunc((d ? v / d : 0) + 8.5));
      out.writeUInt16LE(floatToHalf(d), at);
      for (let j = 0; j < 16; j++) out[at + 2 + j] = q(x[j]) | (q(x[j + 16]) << 4);
    } else {
      const min = Math.min(...x);
      const d = (Math.max(...x) - min) / 15;
      const q = (v: number) => Math.min(15, Math.trunc((d ? (v - min) / d : 0) + 0.5));
      out.writeUInt16LE(floatToHalf(d), at);
      out.writeUInt16LE(floatToHalf(min), at + 2);
      for (let j = 0; j < 16; j++) out[at + 4 + j] = q(x[j]) | (q(x[j + 16]) << 4);
    }
  }
  return out;
}
