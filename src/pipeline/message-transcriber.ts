import type { Logger } from '../logging/logger.js';
import { AudioError, AvaError, RecognizerError, errorMessageOf } from '../errors/errors.js';
import type { UploadRepository } from '../storage/upload-repository.js';
import type { TranscriptInfo } from '../storage/reply-document.js';
import type { AudioDecoder } from '../voice/audio-decoder.js';
import pLimit from 'p-limit';
import { preparePcm, type PcmPreparation } from '../voice/pcm-conditioning.js';
import type { SpeechRecognizer } from '../voice/speech-recognizer.js';
import { rescoredText, type Rescoring } from './hypothesis-choice.js';
import type { Answer, ParsedJob, VoiceJob } from './batch-stages.js';

/** What the transcriber works with. */
export interface MessageTranscriberDeps {
  uploads: UploadRepository;
  decoder: AudioDecoder;
  /** In order of preference: the first that knows a message's language transcribes it. None: voice messages fail. */
  recognizers: readonly SpeechRecognizer[];
  log: Logger;
  /** The noise floor before recognition (`AVA_ASR_NOISE_FLOOR`; conditioning in bench profiles); none without. */
  preparation?: PcmPreparation;
  /**
   * Rescoring of an n-best list by meaning: each hypothesis's intent confidence, and its weight against the log score
   * of each engine (`AVA_ASR_MEANING_WEIGHT`, `AVA_ASR_WHISPER_MEANING_WEIGHT`; see {@link rescoredText}); an engine
   * without a weight, or with 0, keeps its best.
   */
  rescore?: Pick<Rescoring, 'confidences'> & { weights: Readonly<Record<string, number>> };
  /** Voice messages of a batch read and decoded at once (ffmpeg processes); hearing them is the recognisers' pace. */
  parallel?: number;
}

/** A voice message's audio ready to hear, with the recogniser that hears it and the language it is heard in. */
interface HeardAudio {
  v: VoiceJob;
  recognizer: SpeechRecognizer;
  pcm: Int16Array;
  /** Undefined: the recogniser detects it. */
  language: string | undefined;
  seconds: number;
}

/** Voice messages after the transcription stage: heard (with their text) or failed. */
export interface Transcribed {
  heard: ParsedJob[];
  failed: Answer[];
}

/**
 * The stage that turns voice messages into text messages: reads each one's upload, decodes it and transcribes it
 * with the first recogniser that knows its language. Bad audio, an unknown language or a recogniser's failure fails
 * only that message (a stored `failed` reply with its code); a database error propagates, and the batch is retried.
 */
export class MessageTranscriber {
  constructor(private readonly deps: MessageTranscriberDeps) {}

  /**
   * Transcribes the voice messages of a batch: each is read and decoded (up to `parallel` at once), then all are
   * given to their recognisers together, which hear them as their decoders allow (Whisper in one batch).
   */
  async transcribeAll(jobs: readonly VoiceJob[]): Promise<Transcribed> {
    const limit = pLimit(Math.max(1, this.deps.parallel ?? 1));
    // Every message's audio first, so that the recognisers get them all at once (Whisper hears them as one batch).
    const audio = await Promise.all(jobs.map((v) => this.settled(v, () => limit(() => this.audioOf(v)))));
    const results = await Promise.all(
      jobs.map(async (v, i) => {
        const ready = audio[i];
        return 'kind' in ready ? ready : this.settled(v, () => this.hear(ready));
      }),
    );
    return {
      heard: results.filter((r): r is ParsedJob => !('kind' in r)),
      failed: results.filter((r): r is Answer => 'kind' in r),
    };
  }

  /** `work`'s result, or the message's rejection when it fails on the audio or the recogniser (others propagate). */
  private async settled<T>(v: VoiceJob, work: () => Promise<T>): Promise<T | Answer> {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof AudioError || err instanceof RecognizerError)) throw err;
      this.deps.log.info({ messageId: v.key, code: err.code, err: err.message }, 'voice message not transcribed');
      return { kind: 'rejected', job: v.job, key: v.key, error: err };
    }
  }

  /**
   * The recogniser for a message's language: the first that knows it, or where the message names none, the first
   * that detects languages, else the first that knows English.
   */
  private recognizerFor(language: string | undefined): SpeechRecognizer {
    const { recognizers } = this.deps;
    const found = language
      ? recognizers.find((r) => r.languages.includes(language))
      : (recognizers.find((r) => (r.detects?.length ?? 0) > 0) ?? recognizers.find((r) => r.languages.includes('en')));
    if (found) return found;
    if (recognizers.length === 0)
      throw new RecognizerError('this worker has no speech recogniser', {
        hint: "install Debian's libpocketsphinx3 and pocketsphinx-en-us, or give AVA_ASR_WHISPER_MODEL",
      });
    const known = recognizers.map((r) => `${r.engine}: ${r.languages.join(', ')}`).join('; ');
    throw new AudioError('ERR_AUDIO_LANGUAGE', `no speech recogniser here knows language '${language}' (${known})`);
  }

  /** A message's upload, checked to be its own, decoded and prepared for its recogniser. */
  private async audioOf(v: VoiceJob): Promise<HeardAudio> {
    const { fileId, language } = v.message.audio;
    const recognizer = this.recognizerFor(language);
    const upload = await this.deps.uploads.get(fileId);
    if (!upload)
      throw new AudioError('ERR_AUDIO_NOT_FOUND', `no stored audio ${fileId} (past its retention, or never stored)`);
    // An upload serves only the message it was uploaded with: another message naming its fileId would hear (and
    // store the transcript of) someone else's voice.
    if (upload.metadata.messageId !== v.key)
      throw new AudioError('ERR_AUDIO_NOT_YOURS', `audio ${fileId} was uploaded for another message`);
    const audio = await this.deps.decoder.decode(upload.bytes);
    const { preparation } = this.deps;
    const pcm = preparation ? preparePcm(audio.pcm, preparation) : audio.pcm;
    // Without a language, a recogniser that detects chooses one; any other hears English, as it always has.
    const asked = language ?? ((recognizer.detects?.length ?? 0) > 0 ? undefined : 'en');
    return { v, recognizer, pcm, language: asked, seconds: audio.seconds };
  }

  private async hear({ v, recognizer, pcm, language, seconds }: HeardAudio): Promise<ParsedJob> {
    const started = performance.now();
    const heard = await recognizer.transcribe(pcm, language).catch((cause: unknown) => {
      throw cause instanceof AvaError
        ? cause
        : new RecognizerError(`${recognizer.engine} failed: ${errorMessageOf(cause)}`, { cause });
    });
    const { rescore } = this.deps;
    const weight = rescore?.weights[recognizer.engine] ?? 0;
    const { text, chosen } = await rescoredText(
      heard,
      weight > 0 ? { confidences: rescore!.confidences, weight } : undefined,
    );
    const ms = Math.round(performance.now() - started);
    if (!heard.text)
      throw new AudioError(
        'ERR_AUDIO_NO_SPEECH',
        `${recognizer.engine} heard no words in ${seconds.toFixed(1)} s of audio`,
      );
    const transcript: TranscriptInfo = {
      text,
      engine: recognizer.engine,
      language: heard.language ?? language ?? 'en',
      ...(language === undefined && heard.languageProbability !== undefined
        ? { languageProbability: Math.round(heard.languageProbability * 1000) / 1000 }
        : {}),
      ...(heard.confidence !== undefined ? { confidence: heard.confidence } : {}),
      ...(heard.languageModel ? { languageModel: heard.languageModel } : {}),
      ms,
      audioSeconds: Math.round(seconds * 100) / 100,
      ...(heard.hypotheses ? { nbest: { chosen, of: heard.hypotheses.length } } : {}),
    };
    return { job: v.job, key: v.key, digest: v.digest, message: { ...v.message, text }, transcript };
  }
}
