import { describe, expect, it } from 'vitest';
import { buildArpa, sentenceWords } from '../../src/voice/domain-language-model.js';

/** The ARPA file read back: log10 probabilities and back-off weights per n-gram. */
function readArpa(text: string) {
  const grams = [
    new Map<string, { p: number; bo: number }>(),
    new Map<string, { p: number; bo: number }>(),
    new Map<string, { p: number; bo: number }>(),
  ];
  let order = -1;
  for (const line of text.split('\n')) {
    const m = /^\\(\d)-grams:$/.exec(line);
    if (m) order = Number(m[1]) - 1;
    else if (order >= 0 && line.includes('\t')) {
      const [p, words, bo] = line.split('\t');
      grams[order].set(words, { p: 10 ** Number(p), bo: bo === undefined ? 1 : 10 ** Number(bo) });
    }
  }
  return grams;
}

/** P(w | history) by the back-off rule, as a decoder computes it. */
function prob(grams: ReturnType<typeof readArpa>, history: string[], w: string): number {
  const key = [...history, w].join(' ');
  const seen = grams[history.length].get(key);
  if (seen) return seen.p;
  if (history.length === 0) return 0;
  return (grams[history.length - 1].get(history.join(' '))?.bo ?? 1) * prob(grams, history.slice(1), w);
}

describe('domain language model', () => {
  const sentences = [
    'Where is my order?',
    'where is my refund',
    'track my order please',
    'how much is shipping',
    "I'd like a refund, thanks",
  ];
  const arpa = buildArpa(sentences, (w) => w !== 'please')!;
  const grams = readArpa(arpa);
  const vocab = [...grams[0].keys()].filter((w) => w !== '<s>');

  it('writes a valid ARPA trigram file of the pronounceable words', () => {
    expect(arpa).toMatch(/^\\data\\\nngram 1=\d+\nngram 2=\d+\nngram 3=\d+\n/);
    expect(arpa.trimEnd().endsWith('\\end\\')).toBe(true);
    expect(vocab).toContain("i'd");
    expect(vocab).not.toContain('please');
    expect(grams[0].get('<s>')!.p).toBeLessThan(1e-90);
  });

  it('gives every history a distribution that sums to one, seen words or not', () => {
    const histories = [[], ['<s>'], ['my'], ['is'], ['<s>', 'where'], ['is', 'my'], ['my', 'order'], ['refund']];
    for (const h of histories) {
      const total = vocab.reduce((s, w) => s + prob(grams, h, w), 0);
      expect(total, h.join(' ')).toBeCloseTo(1, 3);
    }
  });

  it('prefers what the domain says', () => {
    expect(prob(grams, ['is', 'my'], 'order')).toBeGreaterThan(prob(grams, ['is', 'my'], 'shipping'));
    expect(prob(grams, ['<s>'], 'where')).toBeGreaterThan(prob(grams, ['<s>'], 'much'));
  });

  it('returns null when no word can be pronounced', () => {
    expect(buildArpa(['!!!', '你好'], () => true)).toBeNull();
    expect(buildArpa(['hello'], () => false)).toBeNull();
    expect(sentenceWords('Don’t STOP—now')).toEqual(["don't", 'stop', 'now']);
  });
});
