import { open } from 'node:fs/promises';
import { ModelLoadError } from '../errors/errors.js';
import { bfloatToFloat, halfToFloat } from './half-float.js';

/** One tensor's entry in a safetensors header. */
interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Largest header accepted: real ones are a few kB per hundred tensors. */
const MAX_HEADER_BYTES = 100 * 2 ** 20;

/**
 * A `.safetensors` file (Hugging Face's weight format): an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the raw little-endian data. Tensors are read one at a time as
 * float32; F16 and BF16 are widened. Every inconsistency (a short file, a range outside it, a size that does not
 * match the shape) is a {@link ModelLoadError} naming the file and the tensor.
 */
export class SafetensorsFile {
  private constructor(
    private readonly file: string,
    private readonly handle: Awaited<ReturnType<typeof open>>,
    private readonly dataStart: number,
    private readonly size: number,
    private readonly entries: ReadonlyMap<string, TensorEntry>,
  ) {}

  /** Opens a file and checks its header. */
  static async open(file: string): Promise<SafetensorsFile> {
    const handle = await open(file, 'r').catch((cause: Error) => {
      throw new ModelLoadError(`cannot open weights ${file}: ${cause.message}`, { cause });
    });
    try {
      const { size } = await handle.stat();
      const lengthBytes = Buffer.alloc(8);
      if (size < 8 || (await handle.read(lengthBytes, 0, 8, 0)).bytesRead !== 8)
        throw new Error('shorter than its header length');
      const headerLength = Number(lengthBytes.readBigUInt64LE(0));
      if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size)
        throw new Error(`header of ${headerLength} bytes does not fit a file of ${size}`);
      const headerBytes = Buffer.alloc(headerLength);
      await handle.read(headerBytes, 0, headerLength, 8);
      const header = JSON.parse(headerBytes.toString('utf8')) as Record<string, TensorEntry | Record<string, string>>;
      const entries = new Map<string, TensorEntry>();
      const dataSize = size - 8 - headerLength;
      for (const [name, entry] of Object.entries(header)) {
        if (name === '__metadata__') continue;
        const e = entry as TensorEntry;
        const [begin, end] = e.data_offsets ?? [];
        if (
          !Array.isArray(e.shape) ||
          typeof begin !== 'number' ||
          typeof end !== 'number' ||
          begin > end ||
          end > dataSize
        )
          throw new Error(`tensor ${name} lies outside the file (${begin}–${end} of ${dataSize} data bytes)`);
        entries.set(name, e);
      }
      return new SafetensorsFile(file, handle, 8 + headerLength, size, entries);
    } catch (cause) {
      await handle.close();
      throw cause instanceof ModelLoadError
        ? cause
        : new ModelLoadError(`weights ${file} are not a valid safetensors file: ${(cause as Error).message}`, {
            cause,
          });
    }
  }

  /** Names of the tensors in the file. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  /** A tensor's shape; undefined when the file has no such tensor. */
  shapeOf(name: string): number[] | undefined {
    return this.entries.get(name)?.shape;
  }

  /** A tensor as float32, checked against the shape the caller expects. */
  async float32(name: string, shape: readonly number[]): Promise<Float32Array> {
    const e = this.entries.get(name);
    if (!e) throw new ModelLoadError(`weights ${this.file} have no tensor ${name}`);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))
      throw new ModelLoadError(`tensor ${name} in ${this.file} has shape [${e.shape}], expected [${shape}]`);
    const count = shape.reduce((a, b) => a * b, 1);
    const width = { F32: 4, F16: 2, BF16: 2 }[e.dtype];
    if (!width)
      throw new ModelLoadError(`tensor ${name} in ${this.file} is ${e.dtype}; F32, F16 and BF16 are supported`);
    const [begin, end] = e.data_offsets;
    if (end - begin !== count * width)
      throw new ModelLoadError(
        `tensor ${name} in ${this.file} holds ${end - begin} bytes, its shape needs ${count * width}`,
      );
    const bytes = Buffer.alloc(end - begin);
    const { bytesRead } = await this.handle.read(bytes, 0, bytes.length, this.dataStart + begin);
    if (bytesRead !== bytes.length)
      throw new ModelLoadError(`weights ${this.file} end early (${this.size} bytes) inside tensor ${name}`);
    const out = new Float32Array(count);
    if (e.dtype === 'F32') for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(i * 4);
    else if (e.dtype === 'BF16') for (let i = 0; i < count; i++) out[i] = bfloatToFloat(bytes.readUInt16LE(i * 2));
    else for (let i = 0; i < count; i++) out[i] = halfToFloat(bytes.readUInt16LE(i * 2));
    return out;
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.handle.close();
  }
}
