/** One knowledge-base entry as stored in collection `knowledge`, keyed by a stable id. */
export interface KnowledgeEntry {
  /** Stable id: given in the file, or derived from the file name and the title, so re-importing updates in place. */
  _id: string;
  title: string;
  body: string;
  tags: string[];
  language: 'en' | 'zh';
  /** File name it was imported from (without folders). */
  source: string;
  updatedAt: Date;
}

/** An entry as read from a file, before it is stored. */
export type KnowledgeEntryInput = Omit<KnowledgeEntry, 'updatedAt'>;

/** A passage retrieved for a message. */
export interface KnowledgePassage {
  id: string;
  title: string;
  body: string;
  /** BM25 score, or the fused rank score when retrieved by words and meaning; only comparable within one query. */
  score: number;
}
