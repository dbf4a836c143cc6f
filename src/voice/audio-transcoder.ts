import { spawn } from 'node:child_process';
import { SpeechError } from '../errors/errors.js';

/**
 * WAV to Ogg/Opus (what browsers and phones play compactly) with Debian's ffmpeg: WAV in on stdin, Ogg out on
 * stdout, nothing on disk.
 */
export class AudioTranscoder {
  constructor(
    private readonly command = 'ffmpeg',
    private readonly timeoutMs = 30_000,
  ) {}

  /** Encodes WAV as Opus in an Ogg container, at 32 kbit/s (speech). */
  async toOggOpus(wav: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const child = spawn(this.command, ['-hide_banner', '-loglevel', 'error', '-f', 'wav', '-i', 'pipe:0', '-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let stderr = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new SpeechError(`ffmpeg did not finish within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', (cause) => {
        clearTimeout(timer);
        reject(new SpeechError(`cannot run ${this.command}: ${cause.message}`, { cause, hint: 'install Debian\'s ffmpeg (apt-get install ffmpeg), or fetch format=wav' }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const ogg = Buffer.concat(chunks);
        if (code !== 0 || ogg.toString('ascii', 0, 4) !== 'OggS') reject(new SpeechError(`ffmpeg failed (exit ${code}): ${stderr.trim().slice(0, 200) || 'no Ogg on its output'}`));
        else resolve(ogg);
      });
      // A child that exits early closes its stdin; its exit status, reported on close, says why.
      child.stdin.on('error', () => undefined);
      child.stdin.end(wav);
    });
  }
}
