import pLimit, { type LimitFunction } from 'p-limit';
import type { AudioFormat } from '../storage/reply-document.js';
import type { SpeechRepository } from '../storage/speech-repository.js';
import type { AudioTranscoder } from './audio-transcoder.js';
import type { SpeechSynthesizer } from './speech-synthesizer.js';

/** A reply's speech and whether it came from the cache. */
export interface CachedSpeech {
  audio: Buffer;
  voice: string;
  cached: boolean;
}

/**
 * A reply's speech, made once per reply, voice and format: read from the database when it is there, else synthesised
 * (WAV, espeak-ng) or encoded from the cached WAV (Ogg/Opus, ffmpeg) and stored. The API's audio route and the
 * worker's background speaker both go through it, so both cache the same way. However many ask for the same reply,
 * voice and format at once, it is made once (the others wait for that one), and at most `maxConcurrent` syntheses or
 * encodings run at a time in the process: a burst of requests for uncached speech cannot start a process each.
 */
export class SpeechCache {
  private readonly making = new Map<string, Promise<CachedSpeech>>();
  private readonly limit: LimitFunction;

  constructor(
    private readonly speech: SpeechRepository,
    private readonly synthesizer: SpeechSynthesizer,
    private readonly transcoder: AudioTranscoder,
    maxConcurrent = 2,
  ) {
    this.limit = pLimit(maxConcurrent);
  }

  /** The speech of `text`, the reply of `messageId`, in `format`. */
  async get(messageId: string, text: string, format: AudioFormat): Promise<CachedSpeech> {
    const voice = this.synthesizer.voiceFor(text);
    const cached = await this.speech.get(messageId, voice, format, text);
    if (cached) return { audio: cached, voice, cached: true };
    const key = JSON.stringify([messageId, voice, format]);
    const inFlight = this.making.get(key);
    if (inFlight) return inFlight;
    const made = this.limit(() => this.make(messageId, text, voice, format)).finally(() => this.making.delete(key));
    this.making.set(key, made);
    return made;
  }

  /** Synthesises (or encodes from the cached WAV) and stores one reply's speech. */
  private async make(messageId: string, text: string, voice: string, format: AudioFormat): Promise<CachedSpeech> {
    let wav = format === 'wav' ? null : await this.speech.get(messageId, voice, 'wav', text);
    if (!wav) {
      wav = (await this.synthesizer.synthesize(text)).wav;
      await this.speech.put(messageId, voice, 'wav', text, wav);
    }
    if (format === 'wav') return { audio: wav, voice, cached: false };
    const audio = await this.transcoder.toOggOpus(wav);
    await this.speech.put(messageId, voice, format, text, audio);
    return { audio, voice, cached: false };
  }

  /** Makes sure the WAV of `text` is cached, reading only its text hash when it is. */
  async ensureWav(messageId: string, text: string): Promise<void> {
    const voice = this.synthesizer.voiceFor(text);
    if (await this.speech.has(messageId, voice, 'wav', text)) return;
    await this.get(messageId, text, 'wav');
  }
}
