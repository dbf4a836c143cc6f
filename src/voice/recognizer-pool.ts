import type { SpeechRecognizer, Transcript } from './speech-recognizer.js';

/**
 * Several decoders of one engine behind the one interface, so that a worker hears several voice messages at once:
 * each utterance goes to the decoder with the fewest utterances waiting. Domain text reaches every decoder.
 */
export class RecognizerPool implements SpeechRecognizer {
  readonly engine: string;
  readonly languages: readonly string[];
  private readonly waiting: number[];

  constructor(private readonly decoders: readonly SpeechRecognizer[]) {
    if (decoders.length === 0) throw new Error('a recogniser pool needs at least one decoder');
    this.engine = decoders[0].engine;
    this.languages = decoders[0].languages;
    this.waiting = decoders.map(() => 0);
  }

  /** How many decoders the pool has. */
  get size(): number {
    return this.decoders.length;
  }

  async transcribe(pcm: Int16Array, language?: string): Promise<Transcript> {
    const i = this.waiting.indexOf(Math.min(...this.waiting));
    this.waiting[i]++;
    try {
      return await this.decoders[i].transcribe(pcm, language);
    } finally {
      this.waiting[i]--;
    }
  }

  async useDomainText(sentences: readonly string[]): Promise<void> {
    await Promise.all(this.decoders.map((d) => d.useDomainText?.(sentences) ?? Promise.resolve()));
  }

  async close(): Promise<void> {
    await Promise.all(this.decoders.map((d) => d.close()));
  }
}
