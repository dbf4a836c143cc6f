/**
 * A 16-bit mono WAV: a RIFF header declaring `rate` Hz, codec tag `codec` and `declared` data bytes, then `data` as
 * given, so tests can make headers that lie (truncated files, odd rates, unknown codecs).
 */
export function wavFile(rate: number, data: Buffer, declared = data.length, codec = 1): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(Math.min(0xffffffff, 36 + declared), 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(codec, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(declared, 40);
  return Buffer.concat([h, data]);
}
