import { describe, expect, it } from 'vitest';
import { checkInput } from '../../src/language/input-check.js';
import { languageOf, searchTerms } from '../../src/language/search-terms.js';

describe('checkInput', () => {
  it.each([
    ['', 'empty'],
    ['   \n\t ', 'empty'],
    ['?!?!...', 'no-letters'],
    ['!!!???a', 'no-letters'],
    ['。。。，，', 'no-letters'],
    ['aaaaaaa', 'repeated-character'],
    ['哈哈哈哈', 'repeated-character'],
    ['\uFFFD\uFFFDab\uFFFD', 'unreadable-characters'],
    ['abc\u0085def', 'unreadable-characters'],
    ['Привет مرحبا 你好 hello', 'mixed-scripts'],
    ['sdfghjkl', 'no-vowels'],
  ])('refuses %j (%s)', (text, reason) => {
    expect(checkInput(text)).toEqual({ ok: false, reason });
  });

  it.each([
    '好',
    'ok',
    'Where is my order MP-10001?',
    '我的订单到哪了？',
    '😀 thanks',
    'ありがとう 東京',
    'Why?',
    'rhythm',
  ])('accepts %j', (text) => {
    expect(checkInput(text)).toEqual({ ok: true });
  });
});

describe('searchTerms', () => {
  it('segments Chinese into words (and their characters), not at whitespace', () => {
    expect(searchTerms('我的订单到哪里了？')).toEqual(['订单', '订', '单', '到', '哪里', '哪', '里']);
  });

  it('lower-cases, stems and drops stop words in English, also inside mixed text', () => {
    expect(searchTerms('Where are my Orders shipped?')).toEqual(['order', 'ship']);
    expect(searchTerms('我的order到了吗')).toEqual(['order', '到了', '到']);
  });

  it('tells Chinese from English', () => {
    expect(languageOf('我的订单到哪了')).toBe('zh');
    expect(languageOf('where is MP-10001')).toBe('en');
    expect(languageOf('我的 order MP-10001 到了吗')).toBe('zh');
  });
});
