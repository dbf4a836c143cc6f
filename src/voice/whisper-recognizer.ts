import type { SpeechRecognizer, Transcript } from './speech-recognizer.js';
import { hearBatch, type HeardWindow, type WindowToHear } from './whisper-batch.js';
import { WhisperModel } from './whisper-model.js';

/** Options of the Whisper recogniser. */
export interface WhisperOptions {
  /** ONNX Runtime intra-op threads; 0 lets it choose. */
  intraOpThreads?: number;
  /** Most tokens per 30 s window (Whisper writes about 3 per second of speech; the cap bounds a model that rambles). */
  maxNewTokens?: number;
  /** Beams searched (1: greedy); the n-best list is that long. */
  beam?: number;
  /** Most windows heard in one encoder batch. */
  batch?: number;
  /** Languages chosen among when a message names none (those the model knows). */
  detect?: readonly string[];
}

/** Whisper hears 30 s at a time; longer audio is heard as consecutive windows of one batch. */
const WINDOW_SAMPLES = 30 * 16_000;

interface Pending {
  pcm: Int16Array;
  language: string | undefined;
  resolve(t: Transcript): void;
  reject(err: unknown): void;
}

/**
 * Whisper from a local folder in Hugging Face's ONNX layout, run by the project's own search ({@link hearBatch}):
 * beam search with an n-best list, language detection among `detect` where a message names no language, and every
 * utterance that arrives while a batch runs heard together in the next one (one encoder run, one decoder step per
 * token for all). Its languages come from the folder's generation config: a multilingual model's, or English only.
 */
export class WhisperRecognizer implements SpeechRecognizer {
  readonly engine = 'whisper';
  readonly languages: readonly string[];
  readonly detects: readonly string[];
  private readonly pending: Pending[] = [];
  private running: Promise<void> | null = null;
  private closed = false;

  private constructor(
    private readonly model: WhisperModel,
    private readonly opts: Required<Omit<WhisperOptions, 'intraOpThreads' | 'detect'>>,
    detect: readonly string[],
  ) {
    this.languages = [...model.vocabulary.languages.keys()];
    this.detects = model.vocabulary.multilingual ? detect.filter((l) => this.languages.includes(l)) : [];
  }

  /** Loads the model folder; a folder that is not a Whisper export is a {@link RecognizerError}. */
  static async load(dir: string, opts: WhisperOptions = {}): Promise<WhisperRecognizer> {
    const model = await WhisperModel.load(dir, { intraOpThreads: opts.intraOpThreads });
    return new WhisperRecognizer(
      model,
      { maxNewTokens: opts.maxNewTokens ?? 128, beam: opts.beam ?? 5, batch: opts.batch ?? 8 },
      opts.detect ?? ['en', 'zh'],
    );
  }

  /** Hears one utterance in `language`, or in the most probable of {@link detects} when it is undefined. */
  transcribe(pcm: Int16Array, language?: string): Promise<Transcript> {
    if (this.closed) return Promise.reject(new Error('the Whisper recogniser is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ pcm, language, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /** Frees the sessions once the utterances waiting are heard. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    await this.model.close();
  }

  /** Hears what waits, a batch at a time; what arrives meanwhile joins the next batch. */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.takeBatch();
        try {
          const transcripts = await this.hear(batch.map((p) => ({ pcm: p.pcm, language: p.language })));
          batch.forEach((p, i) => p.resolve(transcripts[i]));
        } catch (err) {
          batch.forEach((p) => p.reject(err));
        }
      }
    } finally {
      this.running = null;
    }
  }

  /** The utterances waiting longest whose windows fit a batch (at least one, however long). */
  private takeBatch(): Pending[] {
    let windows = 0;
    let n = 0;
    while (n < this.pending.length) {
      const w = windowsOf(this.pending[n].pcm.length);
      if (n > 0 && windows + w > this.opts.batch) break;
      windows += w;
      n++;
    }
    return this.pending.splice(0, n);
  }

  private async hear(utterances: ReadonlyArray<{ pcm: Int16Array; language?: string }>): Promise<Transcript[]> {
    const windows: WindowToHear[] = [];
    const owners: number[] = [];
    for (const [u, { pcm, language }] of utterances.entries()) {
      for (let at = 0, n = windowsOf(pcm.length); n > 0; n--, at += WINDOW_SAMPLES) {
        const samples = pcm.subarray(at, at + WINDOW_SAMPLES);
        windows.push({
          features: await this.model.features(samples),
          seconds: samples.length / 16_000,
          language: language ? { given: language } : { among: this.detects.length > 0 ? this.detects : ['en'] },
        });
        owners.push(u);
      }
    }
    const heard: HeardWindow[] = [];
    for (let at = 0; at < windows.length; at += this.opts.batch)
      heard.push(
        ...(await hearBatch(this.model, windows.slice(at, at + this.opts.batch), {
          beam: this.opts.beam,
          maxTokens: this.opts.maxNewTokens,
        })),
      );
    return utterances.map((_, u) => this.transcriptOf(heard.filter((_, i) => owners[i] === u)));
  }

  /** One utterance's windows as a transcript: the n-best list where it was one window, the best texts joined else. */
  private transcriptOf(windows: HeardWindow[]): Transcript {
    const { language, languageProbability } = windows[0];
    if (windows.length > 1) {
      const text = windows.map((w) => (w.hypotheses[0] ? this.model.text(w.hypotheses[0].tokens) : '')).join(' ');
      return { text: text.trim(), language, languageProbability };
    }
    const seen = new Set<string>();
    // Ranked by score per token; as log scores on one scale, each score times the best's length (order unchanged).
    const length = Math.max(1, windows[0].hypotheses[0]?.tokens.length ?? 1);
    const hypotheses = windows[0].hypotheses
      .map((h) => ({ text: this.model.text(h.tokens), logScore: h.score * length }))
      .filter((h) => h.text.length > 0 && !seen.has(h.text) && seen.add(h.text));
    return {
      text: hypotheses[0]?.text ?? '',
      language,
      languageProbability,
      ...(hypotheses.length > 1 ? { hypotheses } : {}),
    };
  }
}

function windowsOf(samples: number): number {
  return Math.max(1, Math.ceil(samples / WINDOW_SAMPLES));
}
