import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';

let dir: string;
let wrapper: string;
let calls: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ava-ffmpeg-'));
  calls = path.join(dir, 'calls');
  // The real ffmpeg, behind a script that writes down the arguments it was given (one per line, a blank line after).
  wrapper = path.join(dir, 'ffmpeg');
  await writeFile(wrapper, `#!/bin/sh\nprintf '%s\\n' "$@" >> '${calls}'\necho >> '${calls}'\nexec ffmpeg "$@"\n`);
  await chmod(wrapper, 0o755);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** The arguments of each ffmpeg run so far. */
const runs = async () =>
  (await readFile(calls, 'utf8'))
    .split('\n\n')
    .filter(Boolean)
    .map((run) => run.split('\n'));

const spoken = (format: string) =>
  execFileSync('sh', ['-c', `espeak-ng --stdout 'where is my order' | ffmpeg -v error -i - -f ${format} -`], {
    maxBuffer: 1 << 24,
  });

describe('AudioDecoder with ffmpeg', () => {
  it('names the demuxer the bytes were sniffed as and allows only the file protocol, so ffmpeg probes nothing', async () => {
    const decoder = new AudioDecoder({ maxSeconds: 60, command: wrapper });
    for (const [format, demuxer] of [
      ['wav', 'wav'],
      ['ogg', 'ogg'],
      ['mp3', 'mp3'],
      ['flac', 'flac'],
    ]) {
      const audio = await decoder.decode(spoken(format));
      expect(audio.pcm.length / 16_000, format).toBeGreaterThan(0.5);
      const args = (await runs()).at(-1)!;
      const input = args.indexOf('-i');
      // Both come before the input they govern.
      expect(args.slice(0, input), format).toEqual(
        expect.arrayContaining(['-f', demuxer, '-protocol_whitelist', 'file']),
      );
      expect(args[args.indexOf('-f') + 1], format).toBe(demuxer);
      expect(args[args.indexOf('-protocol_whitelist') + 1], format).toBe('file');
      expect(args.indexOf('-f'), format).toBeLessThan(input);
      expect(args.indexOf('-protocol_whitelist'), format).toBeLessThan(input);
      expect(path.basename(args[input + 1]), format).toBe(`upload.${format}`);
    }
  });
});
