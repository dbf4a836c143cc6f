import type { IntentCatalog } from '../intent/intent-types.js';
import type { KnowledgeEntry } from '../storage/knowledge-entry.js';

/**
 * The domain's own English text, sentence by sentence, for a recogniser's language model: every intent's English
 * examples, and each English knowledge entry's title and the sentences of its body.
 */
export function domainSentences(catalog: IntentCatalog, entries: readonly KnowledgeEntry[]): string[] {
  const out = catalog.intents.flatMap((i) => [...i.examples.en]);
  for (const e of entries) {
    if (e.language !== 'en') continue;
    out.push(e.title, ...e.body.split(/(?<=[.!?])\s+|\n+/).filter((s) => s.trim()));
  }
  return out;
}
