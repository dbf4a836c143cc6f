import type { Meaning, TextEmbedder } from '../embedding/text-embedder.js';
import { languageOf, type Language } from '../language/search-terms.js';
import type { Logger } from '../logging/logger.js';

/**
 * The meanings of the texts marked `wanted`, each embedded by the encoder of its language, in one call per language
 * (a batch's messages together); undefined for the others and for a language without an encoder. An encoder that
 * fails leaves its texts without meaning, logged: they are recognised by their words, never failed.
 */
export async function messageMeanings(
  texts: readonly string[],
  wanted: readonly boolean[],
  encoders: Partial<Record<Language, TextEmbedder>>,
  log: Logger,
): Promise<Array<Meaning | undefined>> {
  const out = new Array<Meaning | undefined>(texts.length);
  const byLanguage = new Map<Language, number[]>();
  texts.forEach((text, k) => {
    const language = languageOf(text);
    if (!wanted[k] || !encoders[language]) return;
    const indexes = byLanguage.get(language) ?? [];
    indexes.push(k);
    byLanguage.set(language, indexes);
  });
  for (const [language, indexes] of byLanguage) {
    try {
      const vectors = await encoders[language]!.embed(indexes.map((k) => texts[k]));
      indexes.forEach((k, j) => (out[k] = { language, vector: vectors[j] }));
    } catch (err) {
      log.warn(
        { err, language, messages: indexes.length },
        'embedding the batch failed; its intents and knowledge are matched by words only',
      );
    }
  }
  return out;
}
