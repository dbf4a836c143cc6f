import type { GenerationOutput, GenerationRequest, TextGenerator } from '../../src/generation/text-generator.js';

/** Wraps a real generator and records the size of every generate call (an observer, not a stand-in). */
export class CountingGenerator implements TextGenerator {
  readonly calls: number[] = [];
  constructor(private readonly inner: TextGenerator, private readonly failOn?: (r: GenerationRequest) => boolean) {}

  get model() {
    return this.inner.model;
  }

  async generate(requests: readonly GenerationRequest[]): Promise<GenerationOutput[]> {
    this.calls.push(requests.length);
    const bad = this.failOn && requests.find(this.failOn);
    if (bad) throw new Error(`refusing prompt: ${bad.prompt.slice(-40)}`);
    return this.inner.generate(requests);
  }

  async close(): Promise<void> {}
}
