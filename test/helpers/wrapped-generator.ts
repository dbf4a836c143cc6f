import type { GenerationRequest, GenerationResult, TextGenerator } from '../../src/generation/text-generator.js';

/** A test observer around a real generator: model, tokenizer, window and back-pressure are the real one's. */
export abstract class WrappedGenerator implements TextGenerator {
  constructor(protected readonly inner: TextGenerator) {}

  get model() {
    return this.inner.model;
  }

  get window() {
    return this.inner.window;
  }

  get tokenizer() {
    return this.inner.tokenizer;
  }

  whenCapacity(): Promise<void> {
    return this.inner.whenCapacity();
  }

  abstract generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]>;

  /** The real generator belongs to the test, which closes it. */
  async close(): Promise<void> {}
}
