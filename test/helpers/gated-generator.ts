import type { GenerationRequest, GenerationResult, TextGenerator } from '../../src/generation/text-generator.js';
import { WrappedGenerator } from './wrapped-generator.js';

/**
 * Wraps a real generator and holds each request's stream after its first `pieces` pieces of text: those reach the
 * worker's stream at once, the rest (and the call's result, so the reply is not stored) wait until `release()`.
 * Seen from a stream reader, generation is paused mid-way.
 */
export class GatedGenerator extends WrappedGenerator {
  private open!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));

  constructor(
    inner: TextGenerator,
    private readonly pieces: number,
  ) {
    super(inner);
  }

  /** Lets every held piece and result through. */
  release(): void {
    this.open();
  }

  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    const held: Array<() => void> = [];
    const results = await this.inner.generate(
      requests.map((r) => {
        let sent = 0;
        return { ...r, onText: (t: string) => (sent++ < this.pieces ? r.onText?.(t) : held.push(() => r.onText?.(t))) };
      }),
    );
    await this.gate;
    for (const h of held) h();
    return results;
  }
}
