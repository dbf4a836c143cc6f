import { readFile } from 'node:fs/promises';
import { ModelLoadError } from '../errors/errors.js';
import { halfToFloat } from './half-float.js';

/** A metadata value as GGUF stores it: numbers (u64/i64 as bigint), booleans, strings and arrays of them. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types this reader dequantizes, by their numbers in ggml.h. */
const TENSOR_TYPES = {
  0: { name: 'F32', blockSize: 1, blockBytes: 4 },
  1: { name: 'F16', blockSize: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockSize: 32, blockBytes: 18 },
  3: { name: 'Q4_1', blockSize: 32, blockBytes: 20 },
  8: { name: 'Q8_0', blockSize: 32, blockBytes: 34 },
  30: { name: 'BF16', blockSize: 1, blockBytes: 2 },
} as const;

type TensorTypeId = keyof typeof TENSOR_TYPES;
/** A tensor type by name: F32, F16, BF16, Q4_0, Q4_1 or Q8_0. */
export type GgufTensorType = (typeof TENSOR_TYPES)[TensorTypeId]['name'];

/** One tensor of the file: its name, type, dims as GGUF lists them (innermost first) and where its data lies. */
export interface GgufTensorInfo {
  name: string;
  type: GgufTensorType;
  /** ne[0] is the contiguous (row) length, as in ggml; reversed, they are the row-major shape. */
  dims: number[];
  offset: number;
  bytes: number;
}

const MAGIC = 0x46554747; // 'GGUF' read little-endian
/** Most entries and array items accepted, against a corrupt or hostile header claiming billions. */
const MAX_COUNT = 10_000_000;

/**
 * A GGUF file (llama.cpp's model format, versions 2 and 3): the metadata key-value pairs and the tensors, which are
 * dequantized one at a time to float32 in row-major order. Read whole into memory: the models it is meant for are a
 * few hundred megabytes. Every inconsistency is a {@link ModelLoadError} naming the file.
 */
export class GgufFile {
  private constructor(
    readonly file: string,
    private readonly bytes: Buffer,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
  ) {}

  static async open(file: string): Promise<GgufFile> {
    const bytes = await readFile(file).catch((cause: Error) => {
      throw new ModelLoadError(`cannot read ${file}: ${cause.message}`, { cause });
    });
    return GgufFile.parse(bytes, file);
  }

  /** Parses a file already in memory; `file` names it in errors. */
  static parse(bytes: Buffer, file = 'a GGUF buffer'): GgufFile {
    const r = new Reader(bytes, file);
    try {
      if (r.u32() !== MAGIC) throw new Error('it does not start with the GGUF magic');
      const version = r.u32();
      if (version < 2 || version > 3) throw new Error(`GGUF version ${version} is not supported (2 and 3 are)`);
      const tensorCount = r.count();
      const kvCount = r.count();
      const metadata = new Map<string, GgufValue>();
      for (let i = 0; i < kvCount; i++) {
        const key = r.string();
        metadata.set(key, r.value(r.u32()));
      }
      const infos: Array<Omit<GgufTensorInfo, 'bytes' | 'offset'> & { relative: number }> = [];
      for (let i = 0; i < tensorCount; i++) {
        const name = r.string();
        const nDims = r.u32();
        if (nDims < 1 || nDims > 4) throw new Error(`tensor ${name} has ${nDims} dimensions`);
        const dims = Array.from({ length: nDims }, () => r.count());
        const typeId = r.u32();
        const type = TENSOR_TYPES[typeId as TensorTypeId];
        if (!type) throw new Error(`tensor ${name} has ggml type ${typeId}, which this reader does not dequantize`);
        infos.push({ name, type: type.name, dims, relative: Number(r.u64()) });
      }
      const alignment = Number(metadata.get('general.alignment') ?? 32);
      const dataStart = Math.ceil(r.offset / alignment) * alignment;
      const tensors = new Map<string, GgufTensorInfo>();
      for (const info of infos) {
        const type = Object.values(TENSOR_TYPES).find((t) => t.name === info.type)!;
        const elements = info.dims.reduce((a, b) => a * b, 1);
        if (info.dims[0] % type.blockSize !== 0)
          throw new Error(`tensor ${info.name}: rows of ${info.dims[0]} are not whole ${info.type} blocks`);
        const size = (elements / type.blockSize) * type.blockBytes;
        const offset = dataStart + info.relative;
        if (offset + size > bytes.length)
          throw new Error(`tensor ${info.name} (${size} bytes at ${offset}) lies outside the file`);
        tensors.set(info.name, { name: info.name, type: info.type, dims: info.dims, offset, bytes: size });
      }
      return new GgufFile(file, bytes, metadata, tensors);
    } catch (cause) {
      throw new ModelLoadError(`${file} is not a readable GGUF file: ${(cause as Error).message}`, { cause });
    }
  }

  /** A metadata value, checked to be of the expected kind; throws naming the key when it is absent or another kind. */
  get<T extends 'number' | 'string' | 'array'>(
    key: string,
    kind: T,
  ): T extends 'number' ? number : T extends 'string' ? string : GgufValue[] {
    const v = this.metadata.get(key);
    const ok =
      kind === 'array'
        ? Array.isArray(v)
        : kind === 'number'
          ? typeof v === 'number' || typeof v === 'bigint'
          : typeof v === kind;
    if (!ok)
      throw new ModelLoadError(`${this.file}: metadata ${key} is ${v === undefined ? 'missing' : 'not a ' + kind}`);
    return (typeof v === 'bigint' ? Number(v) : v) as never;
  }

  /** A metadata value when present. */
  optional(key: string): GgufValue | undefined {
    return this.metadata.get(key);
  }

  /** A tensor dequantized to float32, in row-major order of its reversed dims. */
  float32(name: string): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new ModelLoadError(`${this.file} has no tensor ${name}`);
    return dequantize(t.type, this.bytes.subarray(t.offset, t.offset + t.bytes));
  }
}

/** float32 values of ggml data of one type (blocks of 32 for the quantized types; low nibbles are elements 0–15). */
export function dequantize(type: GgufTensorType, data: Buffer): Float32Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const half = (at: number) => halfToFloat(view.getUint16(at, true));
  switch (type) {
    case 'F32': {
      const out = new Float32Array(data.byteLength / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F16':
      return Float32Array.from({ length: data.byteLength / 2 }, (_, i) => half(i * 2));
    case 'BF16': {
      const out = new Float32Array(data.byteLength / 2);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return out;
    }
    case 'Q8_0':
      return blocks(data, 34, (at, out) => {
        const d = half(at);
        for (let j = 0; j < 32; j++) out[j] = d * view.getInt8(at + 2 + j);
      });
    case 'Q4_0':
      return blocks(data, 18, (at, out) => {
        const d = half(at);
        for (let j = 0; j < 16; j++) {
          const byte = data[at + 2 + j];
          out[j] = d * ((byte & 0x0f) - 8);
          out[j + 16] = d * ((byte >> 4) - 8);
        }
      });
    case 'Q4_1':
      return blocks(data, 20, (at, out) => {
        const d = half(at);
        const m = half(at + 2);
        for (let j = 0; j < 16; j++) {
          const byte = data[at + 4 + j];
          out[j] = d * (byte & 0x0f) + m;
          out[j + 16] = d * (byte >> 4) + m;
        }
      });
  }
}

function blocks(data: Buffer, blockBytes: number, fill: (at: number, out: Float32Array) => void): Float32Array {
  const n = data.byteLength / blockBytes;
  const out = new Float32Array(n * 32);
  for (let b = 0; b < n; b++) fill(b * blockBytes, out.subarray(b * 32, b * 32 + 32));
  return out;
}

/** Little-endian reads over the header with bounds checks. */
class Reader {
  offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Buffer,
    private readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): number {
    if (this.offset + n > this.bytes.length) throw new Error(`the header ends early (at byte ${this.offset})`);
    const at = this.offset;
    this.offset += n;
    return at;
  }

  u32 = () => this.view.getUint32(this.need(4), true);
  u64 = () => this.view.getBigUint64(this.need(8), true);

  count(): number {
    const n = this.u64();
    if (n > BigInt(MAX_COUNT)) throw new Error(`a count of ${n} at byte ${this.offset - 8} is implausible`);
    return Number(n);
  }

  string(): string {
    const length = this.count();
    const at = this.need(length);
    return this.bytes.toString('utf8', at, at + length);
  }

  value(type: number): GgufValue {
    const v = this.view;
    switch (type) {
      case 0:
        return v.getUint8(this.need(1));
      case 1:
        return v.getInt8(this.need(1));
      case 2:
        return v.getUint16(this.need(2), true);
      case 3:
        return v.getInt16(this.need(2), true);
      case 4:
        return this.u32();
      case 5:
        return v.getInt32(this.need(4), true);
      case 6:
        return v.getFloat32(this.need(4), true);
      case 7:
        return v.getUint8(this.need(1)) !== 0;
      case 8:
        return this.string();
      case 9: {
        const itemType = this.u32();
        const n = this.count();
        return Array.from({ length: n }, () => this.value(itemType));
      }
      case 10:
        return this.u64();
      case 11:
        return v.getBigInt64(this.need(8), true);
      case 12:
        return v.getFloat64(this.need(8), true);
      default:
        throw new Error(`metadata value type ${type} at byte ${this.offset - 4} is unknown (in ${this.file})`);
    }
  }
}
