import type { GenerationRequest, GenerationResult, TextGenerator } from '../../src/generation/text-generator.js';

/** A test observer around a real generator: model, window and token counting are the real one's. */
export abstract class WrappedGenerator implements TextGenerator {
  constructor(protected readonly inner: TextGenerator) {}

  get model() {
    return this.inner.model;
  }

  get window() {
    return this.inner.window;
  }

  get countTokens() {
    return this.inner.countTokens?.bind(this.inner);
  }

  abstract generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]>;

  /** The real generator belongs to the test, which closes it. */
  async close(): Promise<void> {}
}
