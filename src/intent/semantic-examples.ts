import { SemanticIndex } from '../embedding/semantic-index.js';
import type { TextEmbedder } from '../embedding/text-embedder.js';
import type { IntentDefinition } from './intent-types.js';

/**
 * The intents' English examples embedded, each labelled with its intent: the semantic evidence of recognition. The
 * encoder is English-only, so Chinese examples stay lexical.
 */
export async function embedExamples(
  intents: readonly IntentDefinition[],
  embedder: TextEmbedder,
): Promise<SemanticIndex<string>> {
  const examples = intents.flatMap((i) => i.examples.en.map((text) => ({ intent: i.name, text })));
  const vectors = await embedder.embed(examples.map((e) => e.text));
  return new SemanticIndex(examples.map((e, k) => ({ item: e.intent, vector: vectors[k] })));
}
