/** An item and how similar it is to a query: the cosine of their unit embeddings, in [-1, 1]. */
export interface SemanticHit<T> {
  item: T;
  similarity: number;
}

/**
 * Nearest neighbours by cosine over unit vectors (a dot product), by exhaustive scan: the sets it holds (intent
 * examples, knowledge entries) are hundreds to a few thousand vectors, which a scan covers in well under a millisecond.
 */
export class SemanticIndex<T> {
  constructor(private readonly entries: ReadonlyArray<{ item: T; vector: Float32Array }>) {}

  /** Number of vectors. */
  get size(): number {
    return this.entries.length;
  }

  /** Every item with its similarity to `query`, most similar first. */
  rank(query: Float32Array): Array<SemanticHit<T>> {
    return this.entries
      .map((e) => ({ item: e.item, similarity: dot(e.vector, query) }))
      .sort((a, b) => b.similarity - a.similarity);
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
