import type { AvaConfig } from '../config/config.js';
import { SpeechError } from '../errors/errors.js';
import { languageOf } from '../language/search-terms.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PiperVoice } from './piper-voice.js';
import { runTool } from './run-tool.js';

/** Options of the synthesiser. */
export interface SpeechSynthesizerOptions {
  /** The espeak-ng executable. */
  command?: string;
  /** A Piper voice file for English replies, loaded at its first use; without it, espeak-ng speaks English too. */
  piper?: string;
  /** Longest a synthesis may run, in ms. */
  timeoutMs?: number;
}

/** Speech and how it was made. */
export interface Speech {
  /** RIFF WAV, 16-bit mono PCM. */
  wav: Buffer;
  /** The voice it was spoken with: `piper:<name>`, or espeak-ng's voice. */
  voice: string;
}

/** espeak-ng voices by reply language: US English, and Mandarin for Chinese text. */
const VOICES = { en: 'en-us', zh: 'cmn' } as const;
/** Longest text spoken, in characters (a reply is at most a few thousand). */
const MAX_CHARS = 8_000;

/** The synthesiser the configuration asks for: Piper for English where `AVA_TTS_PIPER_VOICE` names a file there. */
export function synthesizerFor(config: Pick<AvaConfig, 'voice' | 'model'>): SpeechSynthesizer {
  const piper = config.voice.piperVoice;
  if (piper === 'off') return new SpeechSynthesizer();
  return new SpeechSynthesizer({ piper: path.isAbsolute(piper) ? piper : path.join(config.model.dir, piper) });
}

/**
 * Text to speech, offline: an English reply with a Piper voice (neural, VITS) where one is installed, else with
 * Debian's espeak-ng, as a Mandarin reply always is. The text goes to espeak-ng on stdin (never as an argument, so no
 * text can become an option); WAV comes out.
 */
export class SpeechSynthesizer {
  private readonly command: string;
  private readonly timeoutMs: number;
  private readonly piperFile: string | undefined;
  private piper: Promise<PiperVoice> | undefined;

  constructor(opts: SpeechSynthesizerOptions = {}) {
    this.command = opts.command ?? 'espeak-ng';
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.piperFile = opts.piper && existsSync(opts.piper) ? opts.piper : undefined;
  }

  /** The voice a text is spoken with: Mandarin when it is mostly Chinese, else US English (Piper's, if installed). */
  voiceFor(text: string): string {
    const language = languageOf(text);
    return language === 'en' && this.piperFile ? `piper:${path.basename(this.piperFile, '.onnx')}` : VOICES[language];
  }

  /** Speaks `text`; rejects with {@link SpeechError}. */
  async synthesize(text: string): Promise<Speech> {
    const voice = this.voiceFor(text);
    const input = text.slice(0, MAX_CHARS);
    if (voice.startsWith('piper:')) {
      this.piper ??= PiperVoice.load(this.piperFile!, { espeak: this.command });
      const piper = await this.piper;
      return { wav: wavOf(await piper.speak(input, this.timeoutMs), piper.sampleRate), voice };
    }
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

/** 16-bit mono PCM as a RIFF WAV file. */
function wavOf(pcm: Int16Array, sampleRate: number): Buffer {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
