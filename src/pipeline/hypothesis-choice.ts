import type { Hypothesis, Transcript } from '../voice/speech-recognizer.js';

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

/** Rescoring by meaning as a worker does it: each hypothesis's intent confidence, and its weight. */
export interface Rescoring {
  confidences(texts: readonly string[]): Promise<number[]>;
  weight: number;
}

/**
 * Which of a transcript's hypotheses meaning chooses, and its text: the engine's best (0) without an n-best list or
 * without rescoring. The worker's transcription stage and the voice benchmark hear through this one function.
 */
export async function rescoredText(heard: Transcript, rescore?: Rescoring): Promise<{ text: string; chosen: number }> {
  const { hypotheses } = heard;
  if (!rescore || !hypotheses || hypotheses.length < 2) return { text: heard.text, chosen: 0 };
  const chosen = chooseHypothesis(hypotheses, await rescore.confidences(hypotheses.map((h) => h.text)), rescore.weight);
  return { text: hypotheses[chosen].text, chosen };
}
