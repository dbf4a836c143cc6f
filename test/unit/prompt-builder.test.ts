import { describe, expect, it } from 'vitest';
import { buildPrompt, SEAM_MARGIN, type PromptBudget } from '../../src/conversation/prompt-builder.js';
import type { ConversationTurn } from '../../src/contract/reply-document.js';

const at = new Date(0);
const turn = (n: number, user: string, assistant: string): ConversationTurn => ({ messageId: `m${n}`, user, assistant, at });
// One "token" per whitespace-separated word: easy to count by hand in the expectations below.
const words = (maxTokens: number): PromptBudget => ({ maxTokens, countTokens: (t) => t.split(/\s+/).filter(Boolean).length });

describe('buildPrompt', () => {
  it('puts recent turns oldest first, then the new message and the assistant cue', () => {
    const { prompt } = buildPrompt({ passages: [], turns: [turn(1, 'Hi', 'Hello!'), turn(2, '你好', '您好')], text: 'Where is my order?' });
    expect(prompt).toBe('User: Hi\nAssistant: Hello!\nUser: 你好\nAssistant: 您好\nUser: Where is my order?\nAssistant:');
    expect(buildPrompt({ passages: [], turns: [], text: 'Hi' }).prompt).toBe('User: Hi\nAssistant:');
  });

  it('puts passages before the dialogue, one line each, most relevant first', () => {
    const { prompt, passages } = buildPrompt({
      passages: [{ title: 'Shipping', body: 'Costs 15 yuan.\nFree over 299.' }, { body: 'Order MP-1 has shipped.' }],
      turns: [turn(1, 'Hi', 'Hello!')],
      text: 'How much is shipping?',
    });
    expect(prompt).toBe('Knowledge:\n- Shipping: Costs 15 yuan. Free over 299.\n- Order MP-1 has shipped.\n\nUser: Hi\nAssistant: Hello!\nUser: How much is shipping?\nAssistant:');
    expect(passages).toBe(2);
  });

  it('keeps the new message, then passages, then as many recent turns as fit the window', () => {
    const parts = {
      passages: [{ title: 'A', body: 'one two three' }, { title: 'B', body: 'four five six seven eight' }],
      turns: [turn(1, 'old question', 'old answer'), turn(2, 'new question', 'new answer')],
      text: 'what now',
    };
    // tail "User: what now\nAssistant:" = 4 words; passage A line "- A: one two three" = 5 (+1 heading word "Knowledge:" +1);
    // passage B line = 8 (+1); each turn "User: x y\nAssistant: x y" = 6 (+1).
    expect(buildPrompt(parts, words(4))).toMatchObject({ prompt: 'User: what now\nAssistant:', passages: 0, turns: 0 });
    expect(buildPrompt(parts, words(11))).toMatchObject({ passages: 1, turns: 0 });
    expect(buildPrompt(parts, words(18))).toMatchObject({ passages: 1, turns: 1 });
    const r = buildPrompt(parts, words(20));
    expect(r).toMatchObject({ passages: 2, turns: 0 });
    expect(r.prompt).toBe('Knowledge:\n- A: one two three\n- B: four five six seven eight\n\nUser: what now\nAssistant:');
    const all = buildPrompt(parts, words(34));
    expect(all).toMatchObject({ passages: 2, turns: 2 });
    expect(all.prompt).toBe(buildPrompt(parts).prompt);
    expect(buildPrompt(parts, words(27))).toMatchObject({ passages: 2, turns: 1 });
    expect(buildPrompt(parts, words(27)).prompt).toContain('new question');
    expect(buildPrompt(parts, words(27)).prompt).not.toContain('old question');
  });

  it('never exceeds the budget when the pieces cost more together than apart', () => {
    // A counter that charges an extra token per line break, as a tokenizer might at the seams.
    const seams: PromptBudget = { maxTokens: 20, countTokens: (t) => t.split(/\s+/).filter(Boolean).length + (t.match(/\n/g)?.length ?? 0) };
    const parts = { passages: [{ body: 'a b c' }], turns: [turn(1, 'q', 'a'), turn(2, 'q', 'a'), turn(3, 'q', 'a')], text: 'x' };
    const r = buildPrompt(parts, seams);
    expect(seams.countTokens(r.prompt)).toBeLessThanOrEqual(20);
    expect(r.turns).toBeGreaterThan(0);
  });

  it('counts each piece once, and the whole prompt only when it comes within SEAM_MARGIN tokens of the budget', () => {
    const counted: string[] = [];
    const spy = (maxTokens: number): PromptBudget => ({ maxTokens, countTokens: (t) => (counted.push(t), t.split(/\s+/).filter(Boolean).length) });
    const parts = { passages: [{ body: 'a b c' }], turns: [turn(1, 'q', 'a'), turn(2, 'q', 'a')], text: 'x' };
    const far = buildPrompt(parts, spy(1000));
    expect(counted).not.toContain(far.prompt);
    counted.length = 0;
    const near = buildPrompt(parts, spy(18 + SEAM_MARGIN - 1));
    expect(near.turns).toBe(2);
    expect(counted).toContain(near.prompt);
  });

  it('sends the message alone when even it does not fit (the generator then cuts it from the left)', () => {
    expect(buildPrompt({ passages: [{ body: 'p' }], turns: [turn(1, 'q', 'a')], text: 'a very long message' }, words(3))).toEqual({
      prompt: 'User: a very long message\nAssistant:',
      passages: 0,
      turns: 0,
    });
  });
});
