import { AudioError } from '../errors/errors.js';

/** Containers AVA accepts for voice messages (ffmpeg decodes each). */
export type AudioContainer = 'wav' | 'ogg' | 'webm' | 'mp3' | 'flac' | 'mp4';

/** What the first bytes of an upload say it is. */
export interface AudioSniff {
  container: AudioContainer;
  /** The MIME type it is stored under. */
  contentType: string;
  /** From a WAV header: its sample rate and how long its data lasts; other containers are measured when decoded. */
  sampleRate?: number;
  seconds?: number;
}

const CONTENT_TYPES: Record<AudioContainer, string> = {
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  webm: 'audio/webm',
  mp3: 'audio/mpeg',
  flac: 'audio/flac',
  mp4: 'audio/mp4',
};
/** Sample rates speech can be recognised from; outside it the header is nonsense or the sound holds no speech band. */
export const MIN_SAMPLE_RATE = 8_000;
export const MAX_SAMPLE_RATE = 192_000;
/** A streaming writer's "size unknown" in a WAV header (ffmpeg, espeak-ng and others write one of these to pipes). */
const UNKNOWN_SIZES = new Set([0, 0xffffffff, 0x7fffffff, 0x7ffff000]);
/** WAVE_FORMAT tags ffmpeg decodes: PCM, IEEE float, A-law, µ-law, extensible. */
const WAV_CODECS = new Set([1, 3, 6, 7, 0xfffe]);

/**
 * Names an upload's container from its magic bytes, and checks a WAV header against its own bytes, so the API
 * answers 415/400 at once for what is not audio, a file that claims WAV but is not, a truncated WAV or a nonsense
 * sample rate. The rest (codec errors inside a valid container, duration of compressed audio, silence) is found
 * when a worker decodes it.
 */
export function sniffAudio(bytes: Buffer): AudioSniff {
  const container = containerOf(bytes);
  if (!container)
    throw new AudioError(
      'ERR_AUDIO_FORMAT',
      'not audio in a format AVA reads (WAV, Ogg/Opus, WebM, MP3, FLAC, MP4/M4A)',
    );
  const sniff: AudioSniff = { container, contentType: CONTENT_TYPES[container] };
  return container === 'wav' ? { ...sniff, ...wavHeader(bytes) } : sniff;
}

function containerOf(b: Buffer): AudioContainer | undefined {
  const ascii = (from: number, to: number) => (b.length >= to ? b.toString('latin1', from, to) : '');
  if (ascii(0, 4) === 'RIFF' || ascii(0, 4) === 'RIFX' || ascii(0, 4) === 'RF64') return 'wav';
  if (ascii(0, 4) === 'OggS') return 'ogg';
  if (b.length >= 4 && b.readUInt32BE(0) === 0x1a45dfa3) return 'webm';
  if (ascii(0, 4) === 'fLaC') return 'flac';
  if (ascii(4, 8) === 'ftyp') return 'mp4';
  if (ascii(0, 3) === 'ID3') return mpegFrameAt(b, afterId3Tag(b)) ? 'mp3' : undefined;
  if (mpegFrameAt(b, 0)) return 'mp3';
  return undefined;
}

/** An MPEG audio frame header at `at`: 11 sync bits, a layer that is not "reserved", a bitrate index that is not "bad". */
function mpegFrameAt(b: Buffer, at: number): boolean {
  return (
    at >= 0 &&
    b.length >= at + 4 &&
    b[at] === 0xff &&
    (b[at + 1] & 0xe0) === 0xe0 &&
    (b[at + 1] & 0x06) !== 0 &&
    b[at + 2] >> 4 !== 0x0f
  );
}

/**
 * Where the audio starts after an ID3v2 tag: its 10-byte header (version 2–4, a size of four 7-bit bytes), the tag,
 * and a 10-byte footer when its flag says so; -1 when the header is not one, so that anything may not hide behind
 * three letters.
 */
function afterId3Tag(b: Buffer): number {
  if (b.length < 10 || b[3] < 2 || b[3] > 4 || b[4] === 0xff) return -1;
  if ([6, 7, 8, 9].some((i) => b[i] >= 0x80)) return -1;
  const size = (b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9];
  return 10 + size + (b[5] & 0x10 ? 10 : 0);
}

/** Walks a RIFF/WAVE file's chunks to its `fmt ` and `data`. */
function wavHeader(b: Buffer): { sampleRate: number; seconds?: number } {
  const notWav = (why: string) => new AudioError('ERR_AUDIO_FORMAT', `claims to be WAV but is not: ${why}`);
  if (b.toString('latin1', 0, 4) !== 'RIFF')
    throw notWav(`${b.toString('latin1', 0, 4)} files are not read; write little-endian RIFF WAV`);
  if (b.length < 12 || b.toString('latin1', 8, 12) !== 'WAVE') throw notWav('no WAVE form after RIFF');
  let at = 12;
  let fmt: { codec: number; channels: number; sampleRate: number; byteRate: number } | undefined;
  while (at + 8 <= b.length) {
    const id = b.toString('latin1', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > b.length) throw notWav('its fmt chunk is shorter than 16 bytes');
      fmt = {
        codec: b.readUInt16LE(body),
        channels: b.readUInt16LE(body + 2),
        sampleRate: b.readUInt32LE(body + 4),
        byteRate: b.readUInt32LE(body + 8),
      };
      if (!WAV_CODECS.has(fmt.codec)) throw notWav(`unknown codec tag ${fmt.codec}`);
      if (fmt.channels < 1 || fmt.channels > 8) throw notWav(`${fmt.channels} channels`);
      if (fmt.sampleRate < MIN_SAMPLE_RATE || fmt.sampleRate > MAX_SAMPLE_RATE) {
        throw new AudioError(
          'ERR_AUDIO_SAMPLE_RATE',
          `sample rate ${fmt.sampleRate} Hz is outside ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz`,
        );
      }
      if (fmt.byteRate === 0) throw notWav('its byte rate is 0');
    } else if (id === 'data') {
      if (!fmt) throw notWav('its data chunk comes before any fmt chunk');
      const available = b.length - body;
      if (UNKNOWN_SIZES.has(size) || size >= 0x7ffff000)
        return { sampleRate: fmt.sampleRate, seconds: available / fmt.byteRate };
      if (size > available)
        throw new AudioError(
          'ERR_AUDIO_TRUNCATED',
          `the WAV header promises ${size} bytes of sound but the file holds ${available}`,
        );
      return { sampleRate: fmt.sampleRate, seconds: size / fmt.byteRate };
    }
    at = body + size + (size % 2);
  }
  throw fmt ? new AudioError('ERR_AUDIO_TRUNCATED', 'the WAV file ends before its data chunk') : notWav('no fmt chunk');
}
