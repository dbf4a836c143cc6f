import type { WhisperModel } from './whisper-model.js';
import { BeamSearch, logSoftmax, type Ended } from './whisper-search.js';

/** One window of audio to hear: its features, and its language or the languages to choose it from. */
export interface WindowToHear {
  features: Float32Array;
  /** Seconds of audio in the window (up to 30): bounds how many tokens it may take. */
  seconds: number;
  language: { given: string } | { among: readonly string[] };
}

/** What one window was heard as. */
export interface HeardWindow {
  language: string;
  /** The probability of `language` among the candidates (1 when it was given). */
  languageProbability: number;
  /** Best score first; at most `beam`. */
  hypotheses: Ended[];
}

/** How a batch is searched. */
export interface BatchSearch {
  beam: number;
  maxTokens: number;
}

/**
 * Hears a batch of windows at once: one encoder run for all, then one decoder step at a time for every window's
 * beams. The first step feeds <|startoftranscript|> alone, so that its logits choose a language where none is given;
 * the prompt then continues with the language, <|transcribe|> and <|notimestamps|>, and each window is searched with
 * {@link BeamSearch}. Each window keeps `beam` rows (a beam that is not live runs as padding, its logits unread);
 * windows whose search has ended leave the batch once they are half of it, so their cache is copied rarely.
 */
export async function hearBatch(
  model: WhisperModel,
  windows: readonly WindowToHear[],
  search: BatchSearch,
): Promise<HeardWindow[]> {
  const v = model.vocabulary;
  const K = search.beam;
  const hidden = await model.encode(windows.map((w) => w.features));
  let { logits, cache } = await model.start(hidden, [v.startOfTranscript], K);
  const languages = windows.map((w, i) => chooseLanguage(model, w, logits[i * K]));
  const prompt = (lang: string) =>
    v.multilingual ? [v.languages.get(lang)!, v.transcribe, v.noTimestamps] : [v.noTimestamps];
  ({ logits, cache } = await model.step(
    windows.flatMap((_, i) => Array.from({ length: K }, () => prompt(languages[i].language))),
    cache,
  ));

  const searches = windows.map(
    (w) =>
      new BeamSearch({
        beam: K,
        maxTokens: Math.max(1, Math.min(search.maxTokens, maxTokensFor(w.seconds), v.textContext - cache.past)),
        endToken: v.endOfText,
        suppress: { always: v.suppress, atBegin: v.suppressAtBegin },
      }),
  );
  // The windows in the cache, in order: window active[a] has rows a·K … a·K + K − 1.
  let active = windows.map((_, i) => i);
  for (;;) {
    const steps = active.map((w, a) => {
      const s = searches[w];
      if (s.done) return { parents: [], tokens: [] };
      return s.step(logits.slice(a * K, a * K + s.rows));
    });
    const live = active.flatMap((w, a) => (searches[w].done ? [] : [a]));
    if (live.length === 0) break;
    const compact = live.length <= active.length / 2;
    const kept = compact ? live : active.map((_, a) => a);
    const parents: number[] = [];
    const tokens: number[] = [];
    for (const a of kept)
      for (let j = 0; j < K; j++) {
        const took = j < steps[a].parents.length;
        parents.push(a * K + (took ? steps[a].parents[j] : 0));
        tokens.push(took ? steps[a].tokens[j] : v.endOfText);
      }
    cache = model.reorder(cache, parents, compact ? kept : undefined);
    active = kept.map((a) => active[a]);
    ({ logits, cache } = await model.step(
      tokens.map((t) => [t]),
      cache,
    ));
  }
  return windows.map((_, i) => ({ ...languages[i], hypotheses: searches[i].results().slice(0, K) }));
}

/**
 * The most tokens a window of `seconds` may take: more than speech needs (fast English is about 5 tokens a second,
 * Chinese up to about 8), so that only a model looping on noise is cut, early.
 */
export function maxTokensFor(seconds: number): number {
  return Math.ceil(12 * seconds) + 16;
}

/** The given language, or the most probable of the candidates by the first step's logits (softmax among them). */
function chooseLanguage(
  model: WhisperModel,
  w: WindowToHear,
  logits: Float32Array,
): { language: string; languageProbability: number } {
  if ('given' in w.language) return { language: w.language.given, languageProbability: 1 };
  const candidates = w.language.among.filter((l) => model.vocabulary.languages.has(l));
  if (candidates.length <= 1 || !model.vocabulary.multilingual)
    return { language: candidates[0] ?? 'en', languageProbability: 1 };
  const p = logSoftmax(Float32Array.from(candidates, (l) => logits[model.vocabulary.languages.get(l)!]));
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return { language: candidates[best], languageProbability: Math.exp(p[best]) };
}
