import type { Logger } from '../logging/logger.js';
import { AudioError, AvaError, RecognizerError, errorMessageOf } from '../errors/errors.js';
import type { UploadRepository } from '../storage/upload-repository.js';
import type { TranscriptInfo } from '../storage/reply-document.js';
import type { AudioDecoder } from '../voice/audio-decoder.js';
import pLimit from 'p-limit';
import { preparePcm, type PcmPreparation } from '../voice/pcm-conditioning.js';
import type { SpeechRecognizer, Transcript } from '../voice/speech-recognizer.js';
import { chooseHypothesis } from './hypothesis-choice.js';
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
   * Rescoring of an n-best list by meaning: each hypothesis's intent confidence, and its weight against the engine's
   * log score (`AVA_ASR_MEANING_WEIGHT`; see {@link chooseHypothesis}).
   */
  rescore?: { confidences(texts: readonly string[]): Promise<number[]>; weight: number };
  /** Voice messages of a batch transcribed at once: the decoders the recognisers have (`AVA_ASR_DECODERS`). */
  parallel?: number;
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

  /** Transcribes the voice messages of a batch, up to `parallel` at once (each decoder takes one at a time). */
  async transcribeAll(jobs: readonly VoiceJob[]): Promise<Transcribed> {
    const limit = pLimit(Math.max(1, this.deps.parallel ?? 1));
    const results = await Promise.all(
      jobs.map((v) =>
        limit(async (): Promise<ParsedJob | Answer> => {
          try {
            const { text, transcript } = await this.transcribe(v);
            return { job: v.job, key: v.key, digest: v.digest, message: { ...v.message, text }, transcript };
          } catch (err) {
            if (!(err instanceof AudioError || err instanceof RecognizerError)) throw err;
            this.deps.log.info({ messageId: v.key, code: err.code, err: err.message }, 'voice message not transcribed');
            return { kind: 'rejected', job: v.job, key: v.key, error: err };
          }
        }),
      ),
    );
    return {
      heard: results.filter((r): r is ParsedJob => !('kind' in r)),
      failed: results.filter((r): r is Answer => 'kind' in r),
    };
  }

  private async transcribe(v: VoiceJob): Promise<{ text: string; transcript: TranscriptInfo }> {
    const { fileId, language } = v.message.audio;
    const recognizer = this.deps.recognizers.find((r) => r.languages.includes(language));
    if (!recognizer) {
      if (this.deps.recognizers.length === 0)
        throw new RecognizerError('this worker has no speech recogniser', {
          hint: "install Debian's libpocketsphinx3 and pocketsphinx-en-us, or give AVA_ASR_WHISPER_MODEL",
        });
      const known = this.deps.recognizers.map((r) => `${r.engine}: ${r.languages.join(', ')}`).join('; ');
      throw new AudioError('ERR_AUDIO_LANGUAGE', `no speech recogniser here knows language '${language}' (${known})`);
    }
    const upload = await this.deps.uploads.get(fileId);
    if (!upload)
      throw new AudioError('ERR_AUDIO_NOT_FOUND', `no stored audio ${fileId} (past its retention, or never stored)`);
    // An upload serves only the message it was uploaded with: another message naming its fileId would hear (and
    // store the transcript of) someone else's voice.
    if (upload.metadata.messageId !== v.key)
      throw new AudioError('ERR_AUDIO_NOT_YOURS', `audio ${fileId} was uploaded for another message`);
    const audio = await this.deps.decoder.decode(upload.bytes);
    const started = performance.now();
    const { preparation } = this.deps;
    const pcm = preparation ? preparePcm(audio.pcm, preparation) : audio.pcm;
    const heard = await recognizer.transcribe(pcm, language).catch((cause: unknown) => {
      throw cause instanceof AvaError
        ? cause
        : new RecognizerError(`${recognizer.engine} failed: ${errorMessageOf(cause)}`, { cause });
    });
    const chosen = await this.choose(heard);
    const ms = Math.round(performance.now() - started);
    if (!heard.text)
      throw new AudioError(
        'ERR_AUDIO_NO_SPEECH',
        `${recognizer.engine} heard no words in ${audio.seconds.toFixed(1)} s of audio`,
      );
    const text = heard.hypotheses?.[chosen]?.text ?? heard.text;
    const transcript: TranscriptInfo = {
      text,
      engine: recognizer.engine,
      language,
      ...(heard.confidence !== undefined ? { confidence: heard.confidence } : {}),
      ...(heard.languageModel ? { languageModel: heard.languageModel } : {}),
      ms,
      audioSeconds: Math.round(audio.seconds * 100) / 100,
      ...(heard.hypotheses ? { nbest: { chosen, of: heard.hypotheses.length } } : {}),
    };
    return { text, transcript };
  }

  /** Which of the hypotheses meaning chooses (0: the engine's best; also without a list or without rescoring). */
  private async choose(heard: Transcript): Promise<number> {
    const { rescore } = this.deps;
    if (!rescore || !heard.hypotheses || heard.hypotheses.length < 2) return 0;
    const confidences = await rescore.confidences(heard.hypotheses.map((h) => h.text));
    return chooseHypothesis(heard.hypotheses, confidences, rescore.weight);
  }
}
