import { SemanticIndex } from '../embedding/semantic-index.js';
import type { TextEmbedder } from '../embedding/text-embedder.js';
import type { Language } from '../language/search-terms.js';
import type { IntentCatalog } from './intent-types.js';
import { OFF_TOPIC } from './semantic-evidence.js';

/**
 * The intents' examples in one language embedded by that language's encoder, each labelled with its intent, and the
 * catalog's off-topic examples labelled {@link OFF_TOPIC}: the semantic evidence of recognition in that language.
 */
export async function embedExamples(
  catalog: Pick<IntentCatalog, 'intents' | 'offTopic'>,
  language: Language,
  embedder: TextEmbedder,
): Promise<SemanticIndex<string>> {
  const examples = [
    ...catalog.intents.flatMap((i) => i.examples[language].map((text) => ({ intent: i.name, text }))),
    ...catalog.offTopic[language].map((text) => ({ intent: OFF_TOPIC, text })),
  ];
  const vectors = await embedder.embed(examples.map((e) => e.text));
  return new SemanticIndex(examples.map((e, k) => ({ item: e.intent, vector: vectors[k] })));
}
