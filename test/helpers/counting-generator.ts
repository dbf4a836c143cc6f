import type { GenerationOutput, GenerationRequest, TextGenerator } from '../../src/generation/text-generator.js';

/**
 * Wraps a real generator and records the size and prompts of every generate call (an observer, not a stand-in).
 * `hold` makes calls wait until a test releases them, to catch a message while it is being processed.
 */
export class CountingGenerator implements TextGenerator {
  readonly calls: number[] = [];
  readonly prompts: string[] = [];
  /** While set, generate calls wait for it before generating. */
  hold?: Promise<void>;

  constructor(private readonly inner: TextGenerator, private readonly failOn?: (r: GenerationRequest) => boolean) {}

  get model() {
    return this.inner.model;
  }

  get window() {
    return this.inner.window;
  }

  get countTokens() {
    return this.inner.countTokens?.bind(this.inner);
  }

  async generate(requests: readonly GenerationRequest[]): Promise<GenerationOutput[]> {
    this.calls.push(requests.length);
    this.prompts.push(...requests.map((r) => r.prompt));
    await this.hold;
    const bad = this.failOn && requests.find(this.failOn);
    if (bad) throw new Error(`refusing prompt: ${bad.prompt.slice(-40)}`);
    return this.inner.generate(requests);
  }

  async close(): Promise<void> {}
}
