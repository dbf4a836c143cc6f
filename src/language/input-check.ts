/** Why a message cannot be understood at all. */
export type UnreadableReason =
  'empty' | 'no-letters' | 'repeated-character' | 'unreadable-characters' | 'mixed-scripts' | 'no-vowels';

/** The verdict on one message's text. */
export type InputCheck = { ok: true } | { ok: false; reason: UnreadableReason };

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
// U+FFFD is what invalid UTF-8 (random bytes) decodes to; C1 controls and private-use characters are what bytes read
// as Latin-1 or random code points look like. None occurs in a message a person typed.
const UNREADABLE = /[\uFFFD\u0080-\u009F\p{Co}\p{Cn}]/u;
const SCRIPTS = [
  'Latin',
  'Han',
  'Cyrillic',
  'Greek',
  'Arabic',
  'Hebrew',
  'Hangul',
  'Hiragana',
  'Katakana',
  'Thai',
  'Devanagari',
  'Armenian',
  'Georgian',
  'Ethiopic',
].map((name) => new RegExp(`\\p{Script=${name}}`, 'u'));
const LATIN_WORD = /\p{Script=Latin}{6,}/gu;
const VOWEL = /[aeiouyàáâãäåèéêëìíîïòóôõöùúûüýÿ]/i;

/**
 * Decides, without a model, whether a message is text a person could have meant: not empty, not only punctuation or
 * symbols, not one character repeated, not random bytes, not a jumble of scripts, not a keyboard mash of consonants.
 * Such messages are answered with a "please rephrase" reply instead of a generated one.
 */
export function checkInput(text: string): InputCheck {
  const chars = [...text.replace(/\s+/gu, '')];
  if (chars.length === 0) return { ok: false, reason: 'empty' };
  if (UNREADABLE.test(text)) return { ok: false, reason: 'unreadable-characters' };
  const meaningful = chars.filter((c) => LETTER_OR_DIGIT.test(c)).length;
  // Mostly symbols ("!!!???", "¯\_(ツ)_/¯") reads as noise even with a letter or two inside.
  if (meaningful === 0 || meaningful / chars.length < 0.3) return { ok: false, reason: 'no-letters' };
  if (chars.length >= 3 && new Set(chars.map((c) => c.toLowerCase())).size === 1)
    return { ok: false, reason: 'repeated-character' };
  const scripts = SCRIPTS.filter((re) => chars.some((c) => re.test(c))).length;
  // Han with kana is ordinary Japanese, and any language mixes in some Latin; four scripts in one message is noise.
  if (scripts >= 4) return { ok: false, reason: 'mixed-scripts' };
  const longLatin = text.match(LATIN_WORD) ?? [];
  const words = text.split(/\s+/u).filter((w) => LETTER_OR_DIGIT.test(w));
  if (longLatin.length > 0 && longLatin.length === words.length && longLatin.every((w) => !VOWEL.test(w)))
    return { ok: false, reason: 'no-vowels' };
  return { ok: true };
}
