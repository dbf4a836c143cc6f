/** Absolute discount taken from every seen bigram and trigram and given to the lower order (Ney et al.). */
const DISCOUNT = 0.5;

/** The words of a sentence as the recogniser's dictionary spells them: lower case, letters and apostrophes. */
export function sentenceWords(sentence: string): string[] {
  return (
    sentence
      .toLowerCase()
      .replace(/[’‘]/g, "'")
      .match(/[a-z]+(?:'[a-z]+)*/g) ?? []
  );
}

/**
 * A trigram language model in ARPA format, built from the domain's own sentences with interpolated absolute
 * discounting, written in back-off form (what pocketsphinx reads). Words the dictionary cannot pronounce split a
 * sentence: the pieces on either side are kept as sentences of their own, so no bigram spans a word that was dropped.
 * Returns null when the text holds no word the dictionary knows.
 */
export function buildArpa(sentences: readonly string[], pronounceable: (word: string) => boolean): string | null {
  const runs: string[][] = [];
  for (const s of sentences) {
    let run: string[] = [];
    for (const w of sentenceWords(s)) {
      if (pronounceable(w)) run.push(w);
      else if (run.length > 0) {
        runs.push(run);
        run = [];
      }
    }
    if (run.length > 0) runs.push(run);
  }
  if (runs.length === 0) return null;

  const counts = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  const add = (order: number, key: string) => counts[order].set(key, (counts[order].get(key) ?? 0) + 1);
  for (const run of runs) {
    const t = ['<s>', ...run, '</s>'];
    for (let i = 0; i < t.length; i++) {
      if (i > 0) add(0, t[i]);
      if (i > 0) add(1, `${t[i - 1]} ${t[i]}`);
      if (i > 1) add(2, `${t[i - 2]} ${t[i - 1]} ${t[i]}`);
    }
  }
  const [unigrams, bigrams, trigrams] = counts;
  const total = [...unigrams.values()].reduce((a, b) => a + b, 0);
  const p1 = new Map([...unigrams].map(([w, c]) => [w, c / total]));
  p1.set('<s>', 0);

  // Interpolated bigram: (c(v w) - D) / c(v ·) + D * n(v ·) / c(v ·) * p1(w), and its back-off weight.
  const bigramsOf = groupByHistory(bigrams);
  const p2 = new Map<string, number>();
  const backoff1 = new Map<string, number>();
  for (const [v, followers] of bigramsOf) {
    const sum = sumOf(followers);
    const lambda = (DISCOUNT * followers.size) / sum;
    let seen = 0;
    let seenLower = 0;
    for (const [w, c] of followers) {
      const p = (c - DISCOUNT) / sum + lambda * p1.get(w)!;
      p2.set(`${v} ${w}`, p);
      seen += p;
      seenLower += p1.get(w)!;
    }
    backoff1.set(v, (1 - seen) / Math.max(1e-12, 1 - seenLower));
  }
  const bigramProb = (v: string, w: string) => p2.get(`${v} ${w}`) ?? (backoff1.get(v) ?? 1) * p1.get(w)!;

  const trigramsOf = groupByHistory(trigrams);
  const p3 = new Map<string, number>();
  const backoff2 = new Map<string, number>();
  for (const [uv, followers] of trigramsOf) {
    const [u, v] = uv.split(' ');
    const sum = sumOf(followers);
    const lambda = (DISCOUNT * followers.size) / sum;
    let seen = 0;
    let seenLower = 0;
    for (const [w, c] of followers) {
      const lower = bigramProb(v, w);
      const p = (c - DISCOUNT) / sum + lambda * lower;
      p3.set(`${u} ${v} ${w}`, p);
      seen += p;
      seenLower += lower;
    }
    backoff2.set(uv, (1 - seen) / Math.max(1e-12, 1 - seenLower));
  }

  const log10 = (p: number) => (p > 0 ? Math.log10(p).toFixed(4) : '-99.0000');
  const lines = ['\\data\\', `ngram 1=${p1.size}`, `ngram 2=${p2.size}`, `ngram 3=${p3.size}`, '', '\\1-grams:'];
  for (const [w, p] of [...p1].sort(byKey))
    lines.push(`${log10(p)}\t${w}${bigramsOf.has(w) ? `\t${log10(backoff1.get(w)!)}` : ''}`);
  lines.push('', '\\2-grams:');
  for (const [vw, p] of [...p2].sort(byKey))
    lines.push(`${log10(p)}\t${vw}${trigramsOf.has(vw) ? `\t${log10(backoff2.get(vw)!)}` : ''}`);
  lines.push('', '\\3-grams:');
  for (const [uvw, p] of [...p3].sort(byKey)) lines.push(`${log10(p)}\t${uvw}`);
  lines.push('', '\\end\\', '');
  return lines.join('\n');
}

/** n-gram counts grouped by their history (all but the last word). */
function groupByHistory(ngrams: ReadonlyMap<string, number>): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [key, c] of ngrams) {
    const cut = key.lastIndexOf(' ');
    const history = key.slice(0, cut);
    const followers = out.get(history) ?? new Map<string, number>();
    followers.set(key.slice(cut + 1), c);
    out.set(history, followers);
  }
  return out;
}

function sumOf(m: ReadonlyMap<string, number>): number {
  let s = 0;
  for (const c of m.values()) s += c;
  return s;
}

function byKey(a: [string, number], b: [string, number]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
