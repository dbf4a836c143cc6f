import type { SemanticIndex } from '../embedding/semantic-index.js';

/**
 * The label of the off-topic examples (the intents file's `offTopic`, the "none" class) in a semantic index: a message
 * nearest to them is recognised as `unknown` and left to the model.
 */
export const OFF_TOPIC = 'unknown';

/** One language's semantic evidence: its encoder's embeddings of the examples, and how similarities become verdicts. */
export interface SemanticExamples {
  /** One vector per example in this language, labelled with its intent, and the off-topic ones with {@link OFF_TOPIC}. */
  index: SemanticIndex<string>;
  /** An intent whose nearest example is less similar than this gets no semantic confidence, and no claim by words alone. */
  floor: number;
  /** How much nearer than every off-topic example an intent's nearest example must be for its words alone to claim. */
  margin: number;
  /** Temperature of the softmax over the intents' similarities: lower trusts a small lead more. */
  temperature: number;
  /** Lexical confidence from which the words alone decide and the meaning raises no other intent. */
  decisive: number;
}

/** What a message's meaning says about the intents. */
export interface SemanticVerdict {
  /** Each intent's confidence by meaning, for those it supports (see {@link supports}), and off-topic's past the floor. */
  confidences: Map<string, number>;
  /**
   * Whether the meaning supports a claim by an intent's words, by what named it:
   * - a pattern (an order number): always;
   * - a keyword: unless an off-topic example is nearer than every example of the intent ("how do you say thank you
   *   in Japanese" names thanks);
   * - shared words alone, or meaning alone: when the intent's nearest example passes the floor and is nearer than
   *   every off-topic example by the margin ("how long is a marathon" shares "how long" with shipping times, and is
   *   far from them in meaning);
   * - an intent without examples in the message's language: always, as the meaning cannot judge it.
   */
  supports(intent: string, namedBy?: 'keyword' | 'pattern'): boolean;
}

/**
 * The verdict of a message's embedding. Confidence is a softmax over the intents' best similarities (their nearest
 * example), so it measures how clearly one intent leads the others; paraphrases sit at modest similarities (0.3 to
 * 0.5 with all-MiniLM-L6-v2, 0.55 to 0.9 with bge-small-zh-v1.5) but well ahead of the rest.
 */
export function semanticVerdict(semantic: SemanticExamples, vector: Float32Array): SemanticVerdict {
  const best = new Map<string, number>();
  for (const hit of semantic.index.rank(vector)) if (!best.has(hit.item)) best.set(hit.item, hit.similarity);
  const top = Math.max(...best.values());
  let total = 0;
  for (const s of best.values()) total += Math.exp((s - top) / semantic.temperature);
  const offTopic = best.get(OFF_TOPIC) ?? -1;
  const claims = (s: number) => s >= semantic.floor && s >= offTopic + semantic.margin;
  const confidences = new Map<string, number>();
  for (const [name, s] of best)
    if (name === OFF_TOPIC ? s >= semantic.floor : claims(s))
      confidences.set(name, Math.exp((s - top) / semantic.temperature) / total);
  return {
    confidences,
    supports: (intent, namedBy) => {
      const s = best.get(intent);
      // A pattern is explicit; an intent without examples in this language is one the meaning cannot judge.
      if (namedBy === 'pattern' || s === undefined) return true;
      return namedBy === 'keyword' ? s > offTopic : claims(s);
    },
  };
}
