import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AudioError, RecognizerError } from '../errors/errors.js';
import { MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, sniffAudio, type AudioContainer } from './audio-format.js';
import { runTool } from './run-tool.js';

/** The rate recognisers take: 16 kHz, mono, 16-bit. */
export const RECOGNIZER_RATE = 16_000;

/** Audio ready for a recogniser, and what it was. */
export interface DecodedAudio {
  /** 16 kHz mono signed 16-bit samples. */
  pcm: Int16Array;
  /** Length of the sound, in seconds. */
  seconds: number;
  container: AudioContainer;
  /** The sample rate of the upload, as ffmpeg read it. */
  sourceRate: number;
}

/** Limits of the decoder. */
export interface AudioDecoderOptions {
  /** Longest audio accepted, in seconds (AVA_AUDIO_MAX_SECONDS). */
  maxSeconds: number;
  /** The ffmpeg executable. */
  command?: string;
  timeoutMs?: number;
}

/**
 * Loudest 20 ms frame, in dBFS, below which audio holds nothing to recognise. Quiet speech sits near -30 dBFS, a
 * silent microphone near -70; a file of digital zeros is -∞.
 */
const SILENCE_DBFS = -50;

/** ffmpeg's demuxer for each container AVA accepts. */
const DEMUXERS: Record<AudioContainer, string> = {
  wav: 'wav',
  ogg: 'ogg',
  webm: 'matroska',
  mp3: 'mp3',
  flac: 'flac',
  mp4: 'mov',
};

/**
 * Any accepted upload to what recognisers take, with Debian's ffmpeg. The upload is checked by its header first
 * ({@link sniffAudio}), written to a private temporary file (MP4 keeps its index at the end, which a pipe cannot
 * seek to) and decoded no further than one second past the limit, so ten hours of audio cost as little as the limit.
 * Every problem with the audio itself is an {@link AudioError} with its code; a missing ffmpeg is a
 * {@link RecognizerError}.
 */
export class AudioDecoder {
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: AudioDecoderOptions) {
    this.command = opts.command ?? 'ffmpeg';
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Decodes `bytes`; rejects with {@link AudioError} for bad audio. */
  async decode(bytes: Buffer): Promise<DecodedAudio> {
    const sniff = sniffAudio(bytes);
    if (sniff.seconds !== undefined && sniff.seconds > this.opts.maxSeconds) throw this.tooLong(sniff.seconds);
    const dir = await mkdtemp(join(tmpdir(), 'ava-audio-'));
    try {
      const file = join(dir, `upload.${sniff.container}`);
      await writeFile(file, bytes, { mode: 0o600 });
      // The demuxer is the one the bytes were sniffed as, and the input may only be this file: no format probing that
      // could pick a playlist or concat demuxer, and no protocol that reaches another file or the network.
      const args = [
        '-hide_banner',
        '-nostdin',
        '-f',
        DEMUXERS[sniff.container],
        '-protocol_whitelist',
        'file',
        '-i',
        file,
        '-t',
        String(this.opts.maxSeconds + 1),
        '-vn',
        '-ac',
        '1',
        '-ar',
        String(RECOGNIZER_RATE),
        '-f',
        's16le',
        '-acodec',
        'pcm_s16le',
        'pipe:1',
      ];
      const { out, log } = await runTool(
        this.command,
        args,
        '',
        this.timeoutMs,
        "install Debian's ffmpeg (apt-get install ffmpeg)",
        (message, started, options) =>
          started
            ? new AudioError('ERR_AUDIO_FORMAT', `the ${sniff.container} audio cannot be decoded: ${message}`)
            : new RecognizerError(message, options),
      );
      const sourceRate = Number(/Audio: [^\n]*?, (\d+) Hz/.exec(log)?.[1] ?? NaN);
      if (!Number.isFinite(sourceRate))
        throw new AudioError('ERR_AUDIO_FORMAT', `the ${sniff.container} file holds no audio stream`);
      if (sourceRate < MIN_SAMPLE_RATE || sourceRate > MAX_SAMPLE_RATE) {
        throw new AudioError(
          'ERR_AUDIO_SAMPLE_RATE',
          `sample rate ${sourceRate} Hz is outside ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz`,
        );
      }
      // A copy: the output buffer may sit at an odd offset of a shared pool, where no Int16Array can view it.
      const pcm = new Int16Array(new Uint8Array(out).buffer, 0, Math.floor(out.length / 2));
      const seconds = pcm.length / RECOGNIZER_RATE;
      if (seconds > this.opts.maxSeconds) throw this.tooLong(seconds);
      if (pcm.length === 0) throw new AudioError('ERR_AUDIO_SILENT', `the ${sniff.container} file holds no sound`);
      const loudest = loudestFrameDbfs(pcm);
      if (loudest < SILENCE_DBFS)
        throw new AudioError(
          'ERR_AUDIO_SILENT',
          `nothing audible: the loudest moment is ${loudest === -Infinity ? '-∞' : loudest.toFixed(0)} dBFS (speech needs at least ${SILENCE_DBFS})`,
        );
      return { pcm, seconds, container: sniff.container, sourceRate };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private tooLong(seconds: number): AudioError {
    const shown = seconds > this.opts.maxSeconds + 1 ? `${Math.round(seconds)} s` : `over ${this.opts.maxSeconds} s`;
    return new AudioError(
      'ERR_AUDIO_TOO_LONG',
      `the audio lasts ${shown}; at most ${this.opts.maxSeconds} s is accepted`,
      { hint: 'raise AVA_AUDIO_MAX_SECONDS, or send shorter utterances' },
    );
  }
}

/** RMS level of the loudest 20 ms frame, in dBFS. */
export function loudestFrameDbfs(pcm: Int16Array, frame = RECOGNIZER_RATE / 50): number {
  let loudest = 0;
  for (let start = 0; start < pcm.length; start += frame) {
    const end = Math.min(pcm.length, start + frame);
    let sum = 0;
    for (let i = start; i < end; i++) sum += pcm[i] * pcm[i];
    loudest = Math.max(loudest, sum / (end - start));
  }
  return 10 * Math.log10(loudest / 32768 ** 2);
}
