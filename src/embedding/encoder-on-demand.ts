import type { SentenceEncoder } from './sentence-encoder.js';

/**
 * A sentence encoder loaded at its first use and shared from then on: the API serves embeddings with it, and a
 * process that is never asked for one never pays its memory or its load time. Concurrent first uses share one load;
 * a failed load is not kept, so the next request tries again.
 */
export class EncoderOnDemand {
  private loading?: Promise<SentenceEncoder>;

  constructor(
    /** The model's id as clients name it: its folder's name. */
    readonly id: string,
    private readonly load: () => Promise<SentenceEncoder>,
  ) {}

  /** The encoder, loaded now if it is not yet. */
  get(): Promise<SentenceEncoder> {
    this.loading ??= this.load().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  /** Releases the encoder if it was loaded. */
  async close(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    // A load that failed was thrown to the request that started it; there is nothing to release then.
    if (loading) await (await loading.catch(() => undefined))?.close();
  }
}
