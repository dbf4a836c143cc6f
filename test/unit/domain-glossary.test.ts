import { describe, expect, it } from 'vitest';
import { domainGlossary } from '../../src/voice/domain-glossary.js';

describe("the domain's names as a prompt", () => {
  it('takes names and codes, not words that begin a sentence, the pronoun I, or bare numbers; most frequent first', () => {
    const glossary = domainGlossary([
      'We accept Alipay and WeChat Pay.',
      'Pay with Alipay in 3 instalments.',
      'Order MP-10002 ships from Shanghai.',
      "I think I'm lost.",
    ]);
    expect(glossary).toBe('Alipay, MP-10002, Pay, Shanghai, WeChat');
  });

  it('keeps at most maxWords, and is empty for a domain without names', () => {
    expect(domainGlossary(['Hello there.', 'Thanks a lot.'])).toBe('');
    expect(domainGlossary(['See Alpha, Beta and Gamma.'], 2)).toBe('Alpha, Beta');
  });
});
