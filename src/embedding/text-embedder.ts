import { LRUCache } from 'lru-cache';
import type { Language } from '../language/search-terms.js';

/** A text's embedding, made by the encoder of its language and compared only with texts in that language. */
export interface Meaning {
  language: Language;
  vector: Float32Array;
}

/** What recognition and retrieval need from a sentence encoder: unit vectors for texts, in order. */
export interface TextEmbedder {
  /** The encoder's model, for logs. */
  readonly model: { readonly id: string; readonly revision: string };
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}

/** Texts whose embeddings are kept: every intent example and knowledge entry. */
const CACHED_TEXTS = 20_000;

/**
 * An embedder that remembers: intent examples and knowledge entries are embedded once and again only when their text
 * changes, and a batch's texts missing from the cache go to the encoder in one call.
 */
export class CachedEmbedder implements TextEmbedder {
  private readonly cache = new LRUCache<string, Float32Array>({ max: CACHED_TEXTS });

  constructor(private readonly inner: TextEmbedder) {}

  get model() {
    return this.inner.model;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const missing = [...new Set(texts.filter((t) => !this.cache.has(t)))];
    if (missing.length > 0) {
      const vectors = await this.inner.embed(missing);
      missing.forEach((t, i) => this.cache.set(t, vectors[i]));
    }
    return texts.map((t) => this.cache.get(t)!);
  }
}
