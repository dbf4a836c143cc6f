const UNITS: Record<string, number> = Object.fromEntries(
  [
    'zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen',
    'seventeen eighteen nineteen',
  ]
    .join(' ')
    .split(' ')
    .map((w, i) => [w, i]),
);
const TENS: Record<string, number> = Object.fromEntries(
  'twenty thirty forty fifty sixty seventy eighty ninety'.split(' ').map((w, i) => [w, 20 + 10 * i]),
);
const SCALES: Record<string, number> = { hundred: 100, thousand: 1000, million: 1_000_000 };
const isNumberWord = (w: string) => w in UNITS || w in TENS || w in SCALES;

/**
 * A text's words as a word error rate compares them, normalised as Whisper's evaluation normalises English: lower
 * case, punctuation and hyphens gone, thousands separators and ordinal suffixes dropped from numerals, and numbers
 * written in words turned into numerals ("three hundred and twenty" → "320"), so that "3" and "three" are the same
 * word and only what was heard differently counts.
 */
export function comparableWords(text: string): string[] {
  const tokens =
    text
      .toLowerCase()
      .replace(/[’‘]/g, "'")
      .replace(/(\d),(?=\d{3}\b)/g, '$1')
      .replace(/(\d+)(st|nd|rd|th)\b/g, '$1')
      .match(/[a-z]+(?:'[a-z]+)*|\d+/g) ?? [];
  const out: string[] = [];
  for (let i = 0; i < tokens.length;) {
    if (!(tokens[i] in UNITS || tokens[i] in TENS)) {
      out.push(tokens[i++]);
      continue;
    }
    let [total, current] = [0, 0];
    for (; i < tokens.length; i++) {
      const w = tokens[i];
      if (w === 'and' && current > 0 && isNumberWord(tokens[i + 1] ?? '')) continue;
      if (w in UNITS) current += UNITS[w];
      else if (w in TENS) current += TENS[w];
      else if (w === 'hundred') current *= 100;
      else if (w in SCALES) [total, current] = [total + current * SCALES[w], 0];
      else break;
    }
    out.push(String(total + current));
  }
  return out;
}
