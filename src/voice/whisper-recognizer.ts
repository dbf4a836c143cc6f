import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type AutomaticSpeechRecognitionPipeline } from '@huggingface/transformers';
import { offlineTransformers } from '../models/transformers-env.js';
import { RecognizerError } from '../errors/errors.js';
import type { SpeechRecognizer, Transcript } from './speech-recognizer.js';

/** Options of the Whisper recogniser. */
export interface WhisperOptions {
  /** ONNX Runtime intra-op threads; 0 lets it choose. */
  intraOpThreads?: number;
  /** Most tokens per utterance (Whisper writes about 3 per second of speech; the cap bounds a model that rambles). */
  maxNewTokens?: number;
}

/**
 * Whisper through transformers.js's `automatic-speech-recognition` pipeline, from a local folder in Hugging Face's
 * ONNX layout (`onnx/encoder_model.onnx`, `onnx/decoder_model_merged.onnx`, configs, tokenizer); nothing is fetched.
 * Its languages come from the folder's generation config: a multilingual model's language tokens, or English only.
 * Utterances are transcribed one at a time.
 */
export class WhisperRecognizer implements SpeechRecognizer {
  readonly engine = 'whisper';
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly asr: AutomaticSpeechRecognitionPipeline,
    readonly languages: readonly string[],
    private readonly multilingual: boolean,
    private readonly maxNewTokens: number,
  ) {}

  /** Loads the model folder; a folder that is not a Whisper export is a {@link RecognizerError}. */
  static async load(dir: string, opts: WhisperOptions = {}): Promise<WhisperRecognizer> {
    const folder = path.resolve(dir);
    let generation: { is_multilingual?: boolean; lang_to_id?: Record<string, number> };
    try {
      generation = JSON.parse(await readFile(path.join(folder, 'generation_config.json'), 'utf8'));
    } catch (cause) {
      throw new RecognizerError(`${folder} has no readable generation_config.json; is it a Whisper export?`, { cause });
    }
    offlineTransformers();
    try {
      const asr = (await pipeline('automatic-speech-recognition', folder, {
        local_files_only: true,
        dtype: 'fp32',
        device: 'cpu',
        session_options: opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {},
      })) as AutomaticSpeechRecognitionPipeline;
      const multilingual = generation.is_multilingual === true;
      const languages = multilingual
        ? Object.keys(generation.lang_to_id ?? {}).map((t) => t.replace(/^<\|(.+)\|>$/, '$1'))
        : ['en'];
      return new WhisperRecognizer(asr, languages, multilingual, opts.maxNewTokens ?? 128);
    } catch (cause) {
      throw new RecognizerError(`cannot load Whisper from ${folder}: ${(cause as Error).message}`, { cause });
    }
  }

  /** Transcribes one utterance (at most 30 s are heard: Whisper's window). */
  transcribe(pcm: Int16Array, language: string): Promise<Transcript> {
    const run = this.queue.then(async () => {
      const audio = Float32Array.from(pcm, (s) => s / 32768);
      const out = await this.asr(audio, {
        max_new_tokens: this.maxNewTokens,
        ...(this.multilingual ? { language, task: 'transcribe' } : {}),
      });
      const text = (Array.isArray(out) ? out.map((o) => o.text).join(' ') : out.text).trim();
      return { text };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Frees the sessions once the utterance in progress is done. */
  async close(): Promise<void> {
    await this.queue;
    await this.asr.dispose();
  }
}
