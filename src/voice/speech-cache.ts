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
 * worker's background speaker both go through it, so both cache the same way.
 */
export class SpeechCache {
  constructor(
    private readonly speech: SpeechRepository,
    private readonly synthesizer: SpeechSynthesizer,
    private readonly transcoder: AudioTranscoder,
  ) {}

  /** The speech of `text`, the reply of `messageId`, in `format`. */
  async get(messageId: string, text: string, format: AudioFormat): Promise<CachedSpeech> {
    const voice = this.synthesizer.voiceFor(text);
    const cached = await this.speech.get(messageId, voice, format, text);
    if (cached) return { audio: cached, voice, cached: true };
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
    await this.speech.put(messageId, voice, 'wav', text, (await this.synthesizer.synthesize(text)).wav);
  }
}
