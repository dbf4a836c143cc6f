import MiniSearch from 'minisearch';
import { searchTerms, type Language } from '../language/search-terms.js';
import type { Meaning } from '../embedding/text-embedder.js';
import { semanticVerdict, type SemanticExamples } from './semantic-evidence.js';
import type { IntentDefinition } from './intent-types.js';

/** One intent and how sure the recogniser is of it, in [0, 1]. */
export interface IntentScore {
  name: string;
  confidence: number;
}

/** The recogniser's verdict on one message. */
export interface IntentRecognition extends IntentScore {
  /** The three best intents, best first (before the threshold is applied). */
  ranking: IntentScore[];
  /** Values captured by the named groups of the matching pattern. */
  slots: Record<string, string>;
}

/** What a message's words say: each intent's confidence from examples, keywords and patterns, raw BM25 for ties, slots. */
export interface LexicalEvidence {
  readonly scores: ReadonlyMap<string, number>;
  readonly raw: ReadonlyMap<string, number>;
  readonly slotsOf: ReadonlyMap<string, Record<string, string>>;
  /** Per intent, the largest share of the message's terms one of its examples matched. */
  readonly covered: ReadonlyMap<string, number>;
  /** Intents a keyword or a pattern named, and which: explicit evidence, whatever share of the message it covers. */
  readonly named: ReadonlyMap<string, 'keyword' | 'pattern'>;
}

/** Settings of the recogniser. */
export interface IntentClassifierOptions {
  /** Below this confidence the intent is `unknown`. */
  threshold: number;
  /** Per language, the examples embedded by that language's encoder; a language without them is recognised by words. */
  semantic?: Partial<Record<Language, SemanticExamples>>;
}

/** Confidence given by a keyword found in the message, before the intent's examples add theirs. */
export const KEYWORD_CONFIDENCE = 0.7;
/** Confidence given by a pattern matching the message. */
export const PATTERN_CONFIDENCE = 0.95;

/**
 * How much an example counts when all it shares with the message are words only spelled alike (a fuzzy match: "story"
 * and "store"): off-topic messages were claimed by shop intents through such matches. Fuzzy matching stays, for typos.
 */
const WEAK_EVIDENCE = 0.5;

/**
 * The share of a message's terms its best intent's example must cover for the words alone to decide (a keyword or a
 * pattern decides regardless). One word shared with an example is no verdict on a message of several: "did you get
 * my question" shares only "question" with the greeting "hi, I have a question", and its meaning is its status.
 */
const DECISIVE_SHARE = 0.6;

/** How much an example counts when it covers none of the message beyond itself; at 1 message length is ignored. */
const MESSAGE_SHARE_FLOOR = 0.6;

interface ExampleDoc {
  id: number;
  intent: string;
  text: string;
}

/**
 * Nearest-example intent recognition over BM25 (MiniSearch) with Chinese-aware terms. Each intent's score is that of
 * its best example, normalised by the score the example gets against itself, so a confidence of 1 means the message
 * holds every term of some example and 0 that it shares none; extra words in the message do not lower it. Keywords
 * and patterns raise an intent's confidence to a floor; a pattern's named groups become slots.
 */
export class IntentClassifier {
  private readonly index: MiniSearch<ExampleDoc>;
  private readonly selfScore = new Map<number, number>();
  private readonly byName: Map<string, IntentDefinition>;
  /** Each intent's keywords, lower-cased, with the terms of the Latin ones: worked out once, not per message. */
  private readonly keywords: Map<string, Keyword[]>;

  constructor(
    intents: readonly IntentDefinition[],
    private readonly opts: IntentClassifierOptions,
  ) {
    this.byName = new Map(intents.map((i) => [i.name, i]));
    this.keywords = new Map(
      intents.map((i) => [i.name, i.keywords.map((k) => ({ text: k.toLowerCase(), terms: searchTerms(k) }))]),
    );
    this.index = new MiniSearch<ExampleDoc>({
      fields: ['text'],
      storeFields: ['intent'],
      tokenize: searchTerms,
      processTerm: (t) => t,
      searchOptions: { combineWith: 'OR', fuzzy: (term) => (/^[a-z]{5,}$/.test(term) ? 0.2 : false), prefix: false },
    });
    const docs = intents.flatMap((intent) =>
      [...intent.examples.en, ...intent.examples.zh].map((text) => ({ intent: intent.name, text })),
    );
    this.index.addAll(docs.map((d, id) => ({ id, ...d })));
    docs.forEach((d, id) => {
      const self = this.index.search(d.text).find((r) => r.id === id);
      this.selfScore.set(id, self?.score ?? 0);
    });
  }

  /**
   * Recognises the intent of one message. With its `meaning` (its embedding by its language's encoder), two things
   * change. Words claim a message only where the meaning supports the intent (see {@link semanticVerdict}): shared
   * words are weak evidence against a message about something else. And where the words do not decide, each intent's
   * confidence becomes the higher of its lexical and its semantic confidence, so a paraphrase that shares no word with
   * any example is still recognised, and one nearest the off-topic examples is `unknown`.
   */
  recognize(text: string, meaning?: Meaning, evidence: LexicalEvidence = this.evidence(text)): IntentRecognition {
    // A copy: semantic evidence changes the scores, and the caller may hand the same evidence on.
    const scores = new Map(evidence.scores);
    const { raw, slotsOf, named } = evidence;
    const raise = (name: string, value: number) =>
      scores.set(name, Math.max(scores.get(name) ?? 0, Math.min(1, value)));
    const semantic = meaning && this.opts.semantic?.[meaning.language];
    if (semantic) {
      const verdict = semanticVerdict(semantic, meaning.vector);
      for (const name of scores.keys()) if (!verdict.supports(name, named.get(name))) scores.set(name, 0);
      // Meaning raises other intents only where the words are not decisive: an embedding's nearest example can be led
      // astray by one salient word ("Message 12: …" is nearest to "did you get my message").
      const decided = this.decisiveIntent(evidence);
      const wordsDecide = decided !== undefined && verdict.supports(decided, named.get(decided));
      if (!wordsDecide) for (const [name, confidence] of verdict.confidences) raise(name, confidence);
    }
    const ranking = [...scores]
      .map(([name, confidence]) => ({ name, confidence: round(confidence) }))
      .sort(
        (a, b) =>
          b.confidence - a.confidence ||
          (raw.get(b.name) ?? 0) - (raw.get(a.name) ?? 0) ||
          a.name.localeCompare(b.name),
      )
      .slice(0, 3);
    const best = ranking[0];
    // `unknown` keeps the best intent's confidence, so a caller sees how far below the threshold the guess was.
    if (!best || best.confidence < this.opts.threshold)
      return { name: 'unknown', confidence: best?.confidence ?? 0, ranking, slots: {} };
    return { ...best, ranking, slots: slotsOf.get(best.name) ?? {} };
  }

  /**
   * The intent a message's words alone settle — lexical confidence at `semantic.decisive` or above — for which its
   * meaning raises no other intent; undefined when the meaning may change the verdict (or there is no semantic
   * evidence).
   */
  decisiveIntent(evidence: LexicalEvidence): string | undefined {
    const decisive = this.decisiveLevel();
    if (decisive === undefined) return undefined;
    let best: string | undefined;
    let top = -1;
    for (const [name, confidence] of evidence.scores) if (confidence > top) [best, top] = [name, confidence];
    if (best === undefined || top < decisive) return undefined;
    return evidence.named.has(best) || (evidence.covered.get(best) ?? 0) >= DECISIVE_SHARE ? best : undefined;
  }

  /**
   * A message's lexical evidence, the costly part of recognition: computed once per message and handed to
   * {@link decisiveIntent} and {@link recognize}.
   */
  evidence(text: string): LexicalEvidence {
    const scores = new Map<string, number>();
    // Raw BM25 breaks ties between intents that cover an example equally well: the rarer shared terms win.
    const raw = new Map<string, number>();
    const covered = new Map<string, number>();
    const named = new Map<string, 'keyword' | 'pattern'>();
    const raise = (name: string, value: number) =>
      scores.set(name, Math.max(scores.get(name) ?? 0, Math.min(1, value)));
    const terms = new Set(searchTerms(text));
    const queryTerms = terms.size;
    for (const hit of this.index.search(text)) {
      const self = this.selfScore.get(hit.id as number) ?? 0;
      const name = hit.intent as string;
      // MiniSearch multiplies a document's score by the number of query terms it matched, so the ratio grows with the
      // square of the share of the example covered; the root brings it back to that share. An example that covers
      // only a small part of a long message ("hello" in "hello, where is order MP-10001?") counts for less, so a
      // greeting in front of a question does not outrank the question.
      const messageShare = queryTerms > 0 ? Math.min(1, hit.queryTerms.length / queryTerms) : 0;
      const weight = weakEvidence(Object.keys(hit.match), terms) ? WEAK_EVIDENCE : 1;
      if (self > 0)
        raise(
          name,
          weight * Math.sqrt(hit.score / self) * (MESSAGE_SHARE_FLOOR + (1 - MESSAGE_SHARE_FLOOR) * messageShare),
        );
      raw.set(name, Math.max(raw.get(name) ?? 0, hit.score));
      covered.set(name, Math.max(covered.get(name) ?? 0, messageShare));
    }
    const lower = text.toLowerCase();
    // Slots per intent: only the winner's reach its handler or template.
    const slotsOf = new Map<string, Record<string, string>>();
    for (const intent of this.byName.values()) {
      if (this.keywords.get(intent.name)!.some((k) => matchesKeyword(k, lower, terms))) {
        // A keyword and the intent's examples are two pieces of evidence, combined as independent ones: "I want to
        // return my order" names returns and also holds all of order_status's "where is my order" (only "order").
        raise(intent.name, 1 - (1 - KEYWORD_CONFIDENCE) * (1 - (scores.get(intent.name) ?? 0)));
        named.set(intent.name, 'keyword');
      }
      for (const pattern of intent.patterns) {
        const found = pattern.match(text);
        if (!found) continue;
        raise(intent.name, PATTERN_CONFIDENCE);
        named.set(intent.name, 'pattern');
        // The first pattern to capture a name keeps it.
        slotsOf.set(intent.name, { ...found, ...slotsOf.get(intent.name) });
      }
    }
    return { scores, raw, slotsOf, covered, named };
  }

  /** The decisive level of the semantic evidence (the same in every language); undefined without any. */
  private decisiveLevel(): number | undefined {
    const semantic = this.opts.semantic;
    return semantic && (semantic.en ?? semantic.zh)?.decisive;
  }

  /** The definition of a recognised intent; undefined for `unknown` and `invalid`. */
  definition(name: string): IntentDefinition | undefined {
    return this.byName.get(name);
  }
}

/** Whether an example matched only by terms the message does not hold as such (fuzzy matches). */
function weakEvidence(exampleTerms: readonly string[], messageTerms: ReadonlySet<string>): boolean {
  return !exampleTerms.some((t) => messageTerms.has(t));
}

interface Keyword {
  text: string;
  terms: string[];
}

/** Chinese keywords match as substrings (segmentation may split them); Latin ones as whole stemmed words. */
function matchesKeyword(keyword: Keyword, lower: string, terms: ReadonlySet<string>): boolean {
  if (/\p{Script=Han}/u.test(keyword.text)) return lower.includes(keyword.text);
  return keyword.terms.length > 0 && keyword.terms.every((w) => terms.has(w));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
