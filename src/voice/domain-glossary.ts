/**
 * The domain's own names, for a recogniser that takes a text prompt (Whisper): the words of the domain's sentences
 * that are written with a capital letter where a sentence does not begin, or with letters and digits (brands,
 * places, products, codes), the most frequent first, once each, joined by commas. Whisper writes what follows such a prompt in its
 * spelling and prefers its words where the audio allows them.
 */
export function domainGlossary(sentences: readonly string[], maxWords = 40): string {
  const counts = new Map<string, number>();
  for (const sentence of sentences) {
    const words = sentence.match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? [];
    words.forEach((w, i) => {
      const named = /\p{L}/u.test(w) && ((i > 0 && /\p{Lu}/u.test(w) && !/^I('|’|$)/u.test(w)) || /\p{N}/u.test(w));
      if (named) counts.set(w, (counts.get(w) ?? 0) + 1);
    });
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, maxWords)
    .map(([w]) => w)
    .join(', ');
}
