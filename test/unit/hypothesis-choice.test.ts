import { describe, expect, it } from 'vitest';
import { chooseHypothesis } from '../../src/pipeline/hypothesis-choice.js';

const hyps = [
  { text: 'west', logScore: -2.72 },
  { text: 'did you get my question', logScore: -2.81 },
  { text: 'did you west', logScore: -79.35 },
];

describe('rescoring by meaning', () => {
  it("keeps the engine's best at weight 0 and when meaning does not tell them apart", () => {
    expect(chooseHypothesis(hyps, [0.1, 0.9, 0.9], 0)).toBe(0);
    expect(chooseHypothesis(hyps, [0.5, 0.5, 0.5], 2)).toBe(0);
  });

  it('takes a near tie that names an intent surely, never one far behind in the engine score', () => {
    expect(chooseHypothesis(hyps, [0.1, 0.9, 1], 2)).toBe(1);
    expect(chooseHypothesis(hyps, [0.1, 0.1, 1], 2)).toBe(0);
  });
});
