import MiniSearch from 'minisearch';
import type { SemanticIndex } from '../embedding/semantic-index.js';
import type { Meaning } from '../embedding/text-embedder.js';
import { searchTerms, type Language } from '../language/search-terms.js';
import type { KnowledgeEntry, KnowledgePassage } from '../storage/knowledge-entry.js';

type Indexed = Pick<KnowledgeEntry, '_id' | 'title' | 'body' | 'tags'>;

/** Entries' embeddings by id, and the similarity below which an entry is not related to a question at all. */
export interface EntryMeanings {
  index: SemanticIndex<string>;
  floor: number;
}

/** Reciprocal-rank fusion's constant: how little the first ranks are favoured over the next. */
const RRF_K = 60;
/** Lexical hits considered for fusion. */
const LEXICAL_DEPTH = 20;
/**
 * Weight of the semantic ranking in the fusion. One shared word ranks an entry first by BM25 whatever the word
 * ("send" in "can you send things to Australia" finds the entry on damaged items); by meaning, a paraphrase's first
 * entry is usually right. Twice the weight lets a clear semantic first beat a lone lexical first.
 */
const SEMANTIC_WEIGHT = 2;

/**
 * An immutable index over knowledge entries: BM25 (MiniSearch) over title, tags and body, with the same Chinese-aware
 * terms as intent recognition, and, when given, the entries' embeddings. A question with an embedding is answered by
 * reciprocal-rank fusion of both rankings, so an entry found by meaning alone can rank beside one found by its words.
 * A new index is built whenever the knowledge base changes, and swapped in whole.
 */
export class KnowledgeIndex {
  private readonly search: MiniSearch<Indexed>;
  private readonly entries: Map<string, Indexed>;

  constructor(
    entries: readonly Indexed[],
    /** Per language, the entries in it embedded by that language's encoder. */
    private readonly meanings: Partial<Record<Language, EntryMeanings>> = {},
  ) {
    this.entries = new Map(entries.map((e) => [e._id, e]));
    this.search = new MiniSearch<Indexed>({
      idField: '_id',
      fields: ['title', 'tags', 'body'],
      extractField: (doc, field) =>
        field === 'tags' ? doc.tags.join(' ') : (doc as unknown as Record<string, string>)[field],
      tokenize: searchTerms,
      processTerm: (t) => t,
      searchOptions: {
        boost: { title: 2, tags: 1.5 },
        combineWith: 'OR',
        fuzzy: (term) => (/^[a-z]{5,}$/.test(term) ? 0.2 : false),
      },
    });
    this.search.addAll(entries);
  }

  /** Number of entries. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The `k` best passages for a text, best first; fewer when fewer are related to it. Without its `meaning` (or
   * without entries embedded in its language): by BM25, the entries that share a term with it. With it: by the fused rank of BM25 and of similarity, among the entries that
   * share a term or whose similarity passes the floor (the semantic ranking weighted {@link SEMANTIC_WEIGHT}); the
   * score is then the fused one. With `related` (and a meaning), only entries whose similarity passes the floor: a
   * message no intent owns may share a word with any entry ("which colour goes with white walls" finds the courier's
   * entry through "white"), and a passage about something else misleads a small model.
   */
  top(text: string, k: number, meaning?: Meaning, related = false): KnowledgePassage[] {
    if (k <= 0 || this.entries.size === 0) return [];
    const lexical = this.search.search(text);
    const passage = (id: string, score: number) => {
      const e = this.entries.get(id)!;
      return { id: e._id, title: e.title, body: e.body, score };
    };
    const meanings = meaning && this.meanings[meaning.language];
    if (!meanings)
      return lexical.slice(0, k).map((hit) => passage(hit.id as string, Math.round(hit.score * 1000) / 1000));
    const fused = new Map<string, number>();
    const add = (id: string, rank: number, weight: number) =>
      fused.set(id, (fused.get(id) ?? 0) + weight / (RRF_K + rank + 1));
    const similar = meanings.index.rank(meaning.vector).filter((hit) => hit.similarity > meanings.floor);
    const close = new Set(similar.map((hit) => hit.item));
    lexical
      .slice(0, LEXICAL_DEPTH)
      .forEach((hit, rank) => (!related || close.has(hit.id as string) ? add(hit.id as string, rank, 1) : undefined));
    similar.forEach((hit, rank) => add(hit.item, rank, SEMANTIC_WEIGHT));
    return [...fused]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([id, score]) => passage(id, score));
  }
}
