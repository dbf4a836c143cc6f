import { SpeechError } from '../errors/errors.js';
import { runTool } from './run-tool.js';

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
    const { out: ogg } = await runTool(
      this.command,
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'wav',
        '-protocol_whitelist',
        'pipe',
        '-i',
        'pipe:0',
        '-c:a',
        'libopus',
        '-b:a',
        '32k',
        '-f',
        'ogg',
        'pipe:1',
      ],
      wav,
      this.timeoutMs,
      "install Debian's ffmpeg (apt-get install ffmpeg), or fetch format=wav",
    );
    if (ogg.toString('ascii', 0, 4) !== 'OggS') throw new SpeechError('ffmpeg wrote no Ogg on its output');
    return ogg;
  }
}
