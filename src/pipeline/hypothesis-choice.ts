import type { Hypothesis } from '../voice/speech-recognizer.js';

/**
 * Rescoring by meaning: the hypothesis with the highest engine log score plus `weight` times its intent confidence.
 * The engine's n-best entries are often near ties (a word's ending, a filler) that only meaning separates; a large gap
 * in the engine's score (more than `weight`) is never overturned. Weight 0 keeps the engine's best.
 */
export function chooseHypothesis(
  hypotheses: readonly Hypothesis[],
  confidences: readonly number[],
  weight: number,
): number {
  let chosen = 0;
  let best = Number.NEGATIVE_INFINITY;
  hypotheses.forEach((h, i) => {
    const score = h.logScore + weight * (confidences[i] ?? 0);
    if (score > best) [chosen, best] = [i, score];
  });
  return chosen;
}
