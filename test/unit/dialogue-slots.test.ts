import { describe, expect, it } from 'vitest';
import { carriedSlots, filledSlots } from '../../src/conversation/dialogue-slots.js';
import { IntentClassifier } from '../../src/intent/intent-classifier.js';
import type { IntentDefinition } from '../../src/intent/intent-types.js';
import { LinearPattern } from '../../src/intent/linear-pattern.js';
import type { ConversationTurn } from '../../src/storage/reply-document.js';

const intent = (name: string, examples: string[], patterns: string[] = []): IntentDefinition => ({
  name,
  handler: 'generate',
  examples: { en: examples, zh: [] },
  keywords: [],
  patterns: patterns.map((p) => LinearPattern.compile(p)),
});
const turn = (slots?: Record<string, string>): ConversationTurn => ({
  messageId: 'm',
  user: 'u',
  assistant: 'a',
  at: new Date(0),
  ...(slots ? { slots } : {}),
});

describe('dialogue slots', () => {
  const classifier = new IntentClassifier(
    [
      intent('order', ['where is my order'], ['\\b(?<orderId>MP-\\d{5})\\b']),
      intent('shipping', ['do you deliver on sundays']),
    ],
    { threshold: 0.3 },
  );
  const products = [LinearPattern.compile('\\b(?<product>sofa|lamp)\\b')];

  it("fills slots from every pattern that matches, whichever intent wins, and from the file's slot patterns", () => {
    const text = 'MP-10002: do you deliver the sofa on sundays?';
    expect(filledSlots(text, classifier.evidence(text), products)).toEqual({ orderId: 'MP-10002', product: 'sofa' });
    expect(filledSlots('hello', classifier.evidence('hello'), products)).toEqual({});
  });

  it('carries each slot from the newest turn that gave it a value', () => {
    expect(carriedSlots([])).toEqual({});
    expect(
      carriedSlots([
        turn({ orderId: 'MP-10001', product: 'sofa' }),
        turn(),
        turn({ orderId: 'MP-10003' }),
        turn({ address: '3 Mill Lane' }),
      ]),
    ).toEqual({ orderId: 'MP-10003', product: 'sofa', address: '3 Mill Lane' });
  });
});
