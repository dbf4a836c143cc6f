import { readFile } from 'node:fs/promises';
import { ModelLoadError } from '../errors/errors.js';
import { bfloatToFloat, halfToFloat } from './half-float.js';

/** CTranslate2's element types, in the order of its `DataType` enum (include/ctranslate2/types.h). */
const DTYPES = ['float32', 'int8', 'int16', 'int32', 'float16', 'bfloat16'] as const;
type DType = (typeof DTYPES)[number];
const BYTES: Record<DType, number> = { float32: 4, int8: 1, int16: 2, int32: 4, float16: 2, bfloat16: 2 };

/** One stored variable: its shape, element type and bytes. */
interface Variable {
  dims: number[];
  dtype: DType;
  data: Buffer;
}

/**
 * A CTranslate2 `model.bin`, as `ctranslate2/specs/model_spec.py` writes it (binary version 6, little-endian): the
 * version, the spec's name and revision, the variables (name, rank, dims, type, byte count, bytes) sorted by name,
 * then aliases (a variable stored once under two names, such as a tied output projection). Quantized variables carry
 * a `<name>_scale` beside them (int8: one per output row; int16: one for all), as the converter wrote them.
 */
export class CTranslate2File {
  private constructor(
    readonly file: string,
    readonly spec: { name: string; revision: number },
    private readonly variables: ReadonlyMap<string, Variable>,
    private readonly aliases: ReadonlyMap<string, string>,
  ) {}

  /** Reads a model.bin; a file of another format or version is a {@link ModelLoadError}. */
  static async open(file: string): Promise<CTranslate2File> {
    const bytes = await readFile(file);
    let at = 0;
    const fail = (why: string): never => {
      throw new ModelLoadError(`${file} is not a CTranslate2 model.bin: ${why} (at byte ${at})`);
    };
    const need = (n: number) => (at + n <= bytes.length ? at : fail('it ends early'));
    const read = <T>(n: number, get: (offset: number) => T): T => {
      const value = get(need(n));
      at += n;
      return value;
    };
    const u8 = () => read(1, (o) => bytes.readUInt8(o));
    const u16 = () => read(2, (o) => bytes.readUInt16LE(o));
    const u32 = () => read(4, (o) => bytes.readUInt32LE(o));
    const text = () => {
      const n = u16();
      const s = bytes.toString('utf8', need(n), at + n - 1);
      at += n;
      return s;
    };
    const version = u32();
    if (version !== 6) fail(`binary version ${version}, not 6`);
    const spec = { name: text(), revision: u32() };
    const variables = new Map<string, Variable>();
    for (let count = u32(), i = 0; i < count; i++) {
      const name = text();
      const dims = Array.from({ length: u8() }, () => u32());
      const dtype = DTYPES[u8()] ?? fail(`variable ${name} has an unknown type`);
      const size = u32();
      if (size !== dims.reduce((a, b) => a * b, 1) * BYTES[dtype]) fail(`variable ${name} has ${size} bytes`);
      variables.set(name, { dims, dtype, data: bytes.subarray(need(size), (at += size)) });
    }
    const aliases = new Map<string, string>();
    for (let count = u32(), i = 0; i < count; i++) aliases.set(text(), text());
    if (at !== bytes.length) fail('bytes are left after the aliases');
    return new CTranslate2File(file, spec, variables, aliases);
  }

  /** Every variable name, aliases included. */
  get names(): string[] {
    return [...this.variables.keys(), ...this.aliases.keys()];
  }

  /** A variable's shape. */
  dims(name: string): number[] {
    return this.variable(name).dims;
  }

  /** A scalar setting of the spec (a head count, a flag), as a number. */
  scalar(name: string): number {
    const v = this.variable(name);
    if (v.dims.length !== 0) throw new ModelLoadError(`${this.file}: ${name} is not a scalar`);
    return this.decode(v)[0];
  }

  /** A variable as float32, dequantized by its `_scale` where it was quantized. */
  float32(name: string): Float32Array {
    const v = this.variable(name);
    const values = this.decode(v);
    if (v.dtype !== 'int8' && v.dtype !== 'int16') return values;
    const scale = this.decode(this.variable(`${this.resolve(name)}_scale`));
    const rowLength = values.length / Math.max(1, v.dims[0] ?? 1);
    // int8: value = stored / scale[row]; int16: one scale for the whole variable.
    for (let i = 0; i < values.length; i++)
      values[i] /= scale.length === 1 ? scale[0] : scale[Math.floor(i / rowLength)];
    return values;
  }

  private resolve(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  private variable(name: string): Variable {
    const v = this.variables.get(this.resolve(name));
    if (!v) throw new ModelLoadError(`${this.file} has no variable ${name}`);
    return v;
  }

  private decode({ dtype, data }: Variable): Float32Array {
    const n = data.length / BYTES[dtype];
    const out = new Float32Array(n);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < n; i++)
      out[i] =
        dtype === 'float32'
          ? view.getFloat32(4 * i, true)
          : dtype === 'float16'
            ? halfToFloat(view.getUint16(2 * i, true))
            : dtype === 'bfloat16'
              ? bfloatToFloat(view.getUint16(2 * i, true))
              : dtype === 'int8'
                ? view.getInt8(i)
                : dtype === 'int16'
                  ? view.getInt16(2 * i, true)
                  : view.getInt32(4 * i, true);
    return out;
  }
}
