import { beforeAll, describe, expect, it } from 'vitest';
import { cannedCompletion } from '../../src/conversation/canned-completion.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';

// GPT-2's byte-level tokenizer (the tiny model's): a Chinese character is one to three tokens.
let tokenizer: TextTokenizer;
beforeAll(async () => {
  tokenizer = await TextTokenizer.load(TINY_MODEL_DIR);
});

describe('a reply the model did not write, bounded as a generated one', () => {
  const en = 'Hello! How can I help you today?';
  const zh = '您好！请问有什么可以帮您？';

  it("is whole with finish reason stop when it fits, counted in the model's tokens", () => {
    expect(cannedCompletion(tokenizer, en, {})).toEqual({
      text: en,
      tokens: tokenizer.encode(en).length,
      finishReason: 'stop',
    });
    expect(cannedCompletion(tokenizer, en, { maxTokens: tokenizer.encode(en).length })).toMatchObject({
      text: en,
      finishReason: 'stop',
    });
  });

  it('is cut at a token boundary past its budget, with finish reason length', () => {
    const ids = tokenizer.encode(en);
    expect(cannedCompletion(tokenizer, en, { maxTokens: 3 })).toEqual({
      text: tokenizer.decode(ids.slice(0, 3)),
      tokens: 3,
      finishReason: 'length',
    });
  });

  it('never ends inside a character: every budget gives a prefix of the text, counted exactly', () => {
    const ids = tokenizer.encode(zh);
    expect(ids.length).toBeGreaterThan([...zh].length);
    for (let budget = 1; budget < ids.length; budget++) {
      const r = cannedCompletion(tokenizer, zh, { maxTokens: budget });
      expect(zh.startsWith(r.text) && !r.text.includes('\uFFFD'), `${budget}: ${r.text}`).toBe(true);
      expect(r.tokens).toBe(tokenizer.encode(r.text).length);
      expect(r.tokens).toBeLessThanOrEqual(budget);
      expect(r.finishReason).toBe('length');
    }
  });

  it('ends before the first stop string', () => {
    expect(cannedCompletion(tokenizer, en, { stop: ['help', 'How'] })).toMatchObject({
      text: 'Hello! ',
      finishReason: 'stop',
    });
    expect(cannedCompletion(tokenizer, en, { stop: ['absent'] }).text).toBe(en);
  });
});
