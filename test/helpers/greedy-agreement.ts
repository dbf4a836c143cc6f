import type { DecoderEngine } from '../../src/inference/decoder-engine.js';

/** A greedy continuation, token by token, with the gap between the two largest logits at each step. */
export interface GreedyPath {
  tokens: number[];
  /** margins[s]: top-1 minus top-2 logit at step s, where tokens[s] was chosen. */
  margins: number[];
}

/** How a candidate's greedy text compares with a reference path. */
export interface GreedyComparison {
  /** Steps at which the candidate was checked and agreed. */
  agreed: number;
  /** The step where the candidate took another token although the reference's choice was decisive; -1 if none. */
  mismatchAt: number;
  /** The step where the texts part at a knife edge (the reference's margin within `noise`); -1 if none. */
  knifeEdgeAt: number;
}

/** The largest and second-largest values' gap and the argmax. */
function topTwo(logits: ArrayLike<number>): { best: number; margin: number } {
  let best = 0;
  let second = -Infinity;
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > logits[best]) {
      second = logits[best];
      best = i;
    } else if (logits[i] > second) second = logits[i];
  }
  return { best, margin: logits[best] - second };
}

/** The engine's greedy path after `prompt`: `steps` tokens (fewer when it ends at `eos`) and their margins. */
export async function greedyPath(
  engine: DecoderEngine,
  prompt: readonly number[],
  steps: number,
  eos?: number,
): Promise<GreedyPath> {
  const path: GreedyPath = { tokens: [], margins: [] };
  let logits = (await engine.prefill([{ handle: 1, tokens: prompt, slots: prompt.length + steps + 1 }]))[0];
  try {
    for (let s = 0; s < steps; s++) {
      const { best, margin } = topTwo(logits);
      path.tokens.push(best);
      path.margins.push(margin);
      if (best === eos || s === steps - 1) break;
      logits = (await engine.decode(new Map([[1, best]]))).get(1)!;
    }
  } finally {
    engine.release(1);
  }
  return path;
}

/**
 * Compares a candidate's greedy text with a reference path, step by step. Two implementations of the same model
 * differ by float noise (another graph, another kernel, another CPU), which can flip a step whose top two logits are
 * closer than that noise; after such a step the texts may part with no bug. So the comparison ends there and says
 * so (`knifeEdgeAt`). A candidate that parts where the reference's choice was decisive is a mismatch.
 * `decode` turns a reference prefix into text (the tokenizer's decode, end-of-text dropped).
 */
export function compareGreedy(
  reference: GreedyPath,
  candidateText: string,
  decode: (tokens: number[]) => string,
  noise: number,
): GreedyComparison {
  // A prefix ending inside a character decodes to a trailing replacement character; compare what is whole.
  const whole = (text: string) => text.replace(/\uFFFD+$/, '');
  for (let s = 0; s < reference.tokens.length; s++) {
    const text = whole(decode(reference.tokens.slice(0, s + 1)));
    const agrees =
      s === reference.tokens.length - 1 ? decode(reference.tokens) === candidateText : candidateText.startsWith(text);
    if (agrees) continue;
    if (reference.margins[s] < noise) return { agreed: s, mismatchAt: -1, knifeEdgeAt: s };
    return { agreed: s, mismatchAt: s, knifeEdgeAt: -1 };
  }
  return { agreed: reference.tokens.length, mismatchAt: -1, knifeEdgeAt: -1 };
}
