import { SpeechError } from '../errors/errors.js';
import { languageOf } from '../language/search-terms.js';
import { runTool } from './run-tool.js';

/** Options of the synthesiser. */
export interface SpeechSynthesizerOptions {
  /** The espeak-ng executable. */
  command?: string;
  /** Longest a synthesis may run, in ms. */
  timeoutMs?: number;
}

/** Speech and how it was made. */
export interface Speech {
  /** RIFF WAV, 16-bit mono PCM. */
  wav: Buffer;
  /** The espeak-ng voice it was spoken with. */
  voice: string;
}

/** espeak-ng voices by reply language: US English, and Mandarin for Chinese text. */
const VOICES = { en: 'en-us', zh: 'cmn' } as const;
/** Longest text spoken, in characters (a reply is at most a few thousand). */
const MAX_CHARS = 8_000;

/**
 * Text to speech with Debian's espeak-ng, offline: a reply in English or Mandarin becomes WAV. The text goes in on
 * stdin (never as an argument, so no text can become an option) and the WAV comes out on stdout.
 */
export class SpeechSynthesizer {
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(opts: SpeechSynthesizerOptions = {}) {
    this.command = opts.command ?? 'espeak-ng';
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** The voice a text is spoken with: Mandarin when it is mostly Chinese, else US English. */
  voiceFor(text: string): string {
    return VOICES[languageOf(text)];
  }

  /** Speaks `text`; rejects with {@link SpeechError}. */
  async synthesize(text: string): Promise<Speech> {
    const voice = this.voiceFor(text);
    const input = text.slice(0, MAX_CHARS);
    const { out: wav } = await runTool(
      this.command,
      ['-v', voice, '--stdin', '--stdout'],
      input,
      this.timeoutMs,
      "install Debian's espeak-ng (apt-get install espeak-ng)",
    );
    if (wav.length < 44 || wav.toString('ascii', 0, 4) !== 'RIFF')
      throw new SpeechError('espeak-ng wrote no WAV on its output');
    return { wav: withSizes(wav), voice };
  }
}

/**
 * espeak-ng writing to a pipe cannot seek back, so its header says "unknown size" (0x7fff…); players that trust the
 * header want the real RIFF and data sizes.
 */
function withSizes(wav: Buffer): Buffer {
  if (wav.toString('ascii', 36, 40) !== 'data') return wav;
  wav.writeUInt32LE(wav.length - 8, 4);
  wav.writeUInt32LE(wav.length - 44, 40);
  return wav;
}
