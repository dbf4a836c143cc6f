/** What a recogniser heard. */
export interface Transcript {
  /** The words, lower-case for pocketsphinx; empty when no words were heard. */
  text: string;
  /** The engine's confidence in [0, 1] where it gives one (pocketsphinx: the best path's posterior probability). */
  confidence?: number;
  /** The language heard in: the one asked for, or the one the engine chose where none was asked for. */
  language?: string;
  /** The chosen language's probability among the candidates, where the engine chose it. */
  languageProbability?: number;
  /** Which language model decoded it, where the engine has several (`domain` or `general`). */
  languageModel?: string;
  /**
   * The engine's n-best list where it gives one, best first (the first is `text`): each hypothesis with its score as
   * a natural logarithm (acoustic and language model together), so that a later stage may choose another by meaning.
   */
  hypotheses?: ReadonlyArray<Hypothesis>;
}

/** One hypothesis of an n-best list. */
export interface Hypothesis {
  text: string;
  /** The engine's score, a natural logarithm; only differences between hypotheses of one utterance mean anything. */
  logScore: number;
}

/**
 * A speech-to-text engine behind one interface: 16 kHz mono 16-bit samples in, text out. Implementations keep their
 * models loaded between utterances and decode one utterance at a time per instance.
 */
export interface SpeechRecognizer {
  /** Engine name, stored with each transcript (`pocketsphinx`, `whisper`). */
  readonly engine: string;
  /** ISO 639-1 codes of the languages it recognises. */
  readonly languages: readonly string[];
  /**
   * Languages the engine tells apart by itself: a message that names no language is heard in the most probable of
   * them. Absent: the engine cannot choose.
   */
  readonly detects?: readonly string[];
  /** Transcribes one utterance in `language` (one of {@link languages}), or in one it detects when undefined. */
  transcribe(pcm: Int16Array, language?: string): Promise<Transcript>;
  /** Takes the domain's own sentences (intent examples, knowledge titles and bodies) to bias recognition towards. */
  useDomainText?(sentences: readonly string[]): Promise<void>;
  /** Frees the models. */
  close(): Promise<void>;
}
