import MiniSearch from 'minisearch';
import { searchTerms } from '../language/search-terms.js';
import type { KnowledgeEntry, KnowledgePassage } from '../storage/knowledge-entry.js';

type Indexed = Pick<KnowledgeEntry, '_id' | 'title' | 'body' | 'tags'>;

/**
 * An immutable BM25 index (MiniSearch) over knowledge entries: title, tags and body, with the same Chinese-aware
 * terms as intent recognition. A new index is built whenever the knowledge base changes, and swapped in whole.
 */
export class KnowledgeIndex {
  private readonly search: MiniSearch<Indexed>;
  private readonly entries: Map<string, Indexed>;

  constructor(entries: readonly Indexed[]) {
    this.entries = new Map(entries.map((e) => [e._id, e]));
    this.search = new MiniSearch<Indexed>({
      idField: '_id',
      fields: ['title', 'tags', 'body'],
      extractField: (doc, field) => (field === 'tags' ? doc.tags.join(' ') : (doc as unknown as Record<string, string>)[field]),
      tokenize: searchTerms,
      processTerm: (t) => t,
      searchOptions: { boost: { title: 2, tags: 1.5 }, combineWith: 'OR', fuzzy: (term) => (/^[a-z]{5,}$/.test(term) ? 0.2 : false) },
    });
    this.search.addAll(entries);
  }

  /** Number of entries. */
  get size(): number {
    return this.entries.size;
  }

  /** The `k` best passages for a text, best first; fewer when fewer share a term with it. */
  top(text: string, k: number): KnowledgePassage[] {
    if (k <= 0 || this.entries.size === 0) return [];
    return this.search
      .search(text)
      .slice(0, k)
      .map((hit) => {
        const e = this.entries.get(hit.id as string)!;
        return { id: e._id, title: e.title, body: e.body, score: Math.round(hit.score * 1000) / 1000 };
      });
  }
}
