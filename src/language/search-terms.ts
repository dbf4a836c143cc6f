import { stemmer } from 'stemmer';

// One segmenter for every language: with the `zh` locale ICU splits Chinese by its dictionary and everything else at
// word boundaries, so mixed messages ("我的order到了吗") are cut correctly too.
const SEGMENTER = new Intl.Segmenter('zh', { granularity: 'word' });
const HAN = /\p{Script=Han}/u;
const LATIN_WORD = /^[\p{Script=Latin}\p{N}'’]+$/u;

// Words that carry no intent or topic. Kept short: BM25's inverse document frequency already discounts common words;
// these are the ones frequent enough in questions to drown a short message's real terms.
const STOP_WORDS = new Set([
  ...'a an the is are was were be been am do does did i me my mine you your we our us it its this that these those to of in on at for with and or but so if can could would will shall should may might please hi hey there what how when where which who why has have had any some just about'.split(
    ' ',
  ),
  ...'的 了 吗 呢 吧 啊 呀 哦 嘛 么 怎么 怎样 如何 什么 可以 能 是 我 你 您 我的 你的 您的 我们 你们 他 她 它 这 那 这个 那个 在 有 就 都 也 还 和 与 请 请问 一下 一个'.split(
    ' ',
  ),
]);

/**
 * The search terms of a text, for intent recognition and knowledge retrieval alike: Chinese is segmented into words by
 * `Intl.Segmenter` (never by whitespace) and each multi-character Chinese word also yields its characters, which keeps
 * recall when a query and an entry are segmented differently; Latin words are lower-cased and Porter-stemmed; stop
 * words and punctuation are dropped.
 */
export function searchTerms(text: string): string[] {
  const terms: string[] = [];
  for (const { segment, isWordLike } of SEGMENTER.segment(text.normalize('NFKC'))) {
    if (!isWordLike) continue;
    const word = segment.toLowerCase();
    if (STOP_WORDS.has(word)) continue;
    if (HAN.test(word)) {
      terms.push(word);
      if (word.length > 1) for (const ch of word) if (HAN.test(ch) && !STOP_WORDS.has(ch)) terms.push(ch);
    } else if (LATIN_WORD.test(word)) {
      terms.push(stemmer(word.replace(/['’]s$/, '')));
    } else {
      terms.push(word);
    }
  }
  return terms;
}

/** The languages AVA tells apart: replies, examples, encoders and knowledge entries are kept per language. */
export type Language = 'en' | 'zh';

/** `zh` when a text is mostly Chinese, else `en`: which language a fixed reply is given in. */
export function languageOf(text: string): Language {
  let han = 0;
  let latin = 0;
  for (const ch of text) {
    if (HAN.test(ch)) han++;
    else if (/\p{Script=Latin}/u.test(ch)) latin++;
  }
  // A Chinese character carries about as much as a short Latin word.
  return han * 3 >= latin && han > 0 ? 'zh' : 'en';
}
