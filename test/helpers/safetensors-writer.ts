import { writeFile } from 'node:fs/promises';

/** Writes float32 tensors as a `.safetensors` file (an 8-byte header length, the JSON header, the raw data). */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyArray<{ name: string; shape: number[]; data: Float32Array }>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  await writeFile(
    file,
    Buffer.concat([
      length,
      json,
      ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
    ]),
  );
}
