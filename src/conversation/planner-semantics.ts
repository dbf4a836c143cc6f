import type { TextEmbedder } from '../embedding/text-embedder.js';
import type { IntentCatalog } from '../intent/intent-types.js';
import { embedExamples } from '../intent/semantic-examples.js';
import type { Language } from '../language/search-terms.js';
import type { Logger } from '../logging/logger.js';
import type { SemanticExamples } from '../intent/semantic-evidence.js';

/** Semantic recognition and retrieval in one language: its encoder, the examples it embedded, and their calibration. */
export interface LanguageSemantics extends SemanticExamples {
  embedder: TextEmbedder;
}

/** Semantic recognition and retrieval, per language that has an encoder. */
export interface PlannerSemantics {
  languages: Partial<Record<Language, LanguageSemantics>>;
  log: Logger;
}

/**
 * How similarities become verdicts: each language's floor and off-topic margin (its encoder's scale), and the shared
 * softmax and decisive level.
 */
export interface SemanticCalibration {
  floor: Record<Language, number>;
  margin: Record<Language, number>;
  temperature: number;
  decisive: number;
}

/** One language's encoders: one that caches (for the examples, embedded once) and one for messages, seen once. */
export interface LanguageEncoder {
  embedder: TextEmbedder;
  encoder: TextEmbedder;
}

/** The planner's semantic evidence: in each language with an encoder, the catalog's examples embedded by it. */
export async function plannerSemantics(
  catalog: Pick<IntentCatalog, 'intents' | 'offTopic'>,
  encoders: Partial<Record<Language, LanguageEncoder>>,
  calibration: SemanticCalibration,
  log: Logger,
): Promise<PlannerSemantics> {
  const languages: Partial<Record<Language, LanguageSemantics>> = {};
  for (const [language, { embedder, encoder }] of Object.entries(encoders) as Array<[Language, LanguageEncoder]>)
    languages[language] = {
      embedder: encoder,
      index: await embedExamples(catalog, language, embedder),
      floor: calibration.floor[language],
      margin: calibration.margin[language],
      temperature: calibration.temperature,
      decisive: calibration.decisive,
    };
  return { languages, log };
}

/** What the recogniser needs of the planner's semantics: each language's examples and calibration, without encoders. */
export function classifierSemantics(
  semantics: PlannerSemantics | undefined,
): Partial<Record<Language, SemanticExamples>> {
  return Object.fromEntries(
    Object.entries(semantics?.languages ?? {}).map(([language, { embedder: _, ...examples }]) => [language, examples]),
  );
}
