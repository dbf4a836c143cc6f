import { expect } from 'vitest';
import type { TextGenerator } from '../../src/generation/text-generator.js';
import type { DecoderEngine } from '../../src/inference/decoder-engine.js';
import { compareGreedy, greedyPath } from './greedy-agreement.js';

/** What a parity run compared. */
export interface ParityReport {
  /** Greedy steps compared and found equal. */
  compared: number;
  /** Texts that parted at a knife edge (top-2 logits within float noise) and were compared up to it. */
  knifeEdges: number;
  /** Texts equal to the end. */
  identical: number;
}

/**
 * Greedy parity of the engine with a reference generator (transformers.js) over prompts: each reference text must
 * follow the engine's greedy path step by step, up to any step whose top two logits lie within `noise` (where either
 * may pick either token with no bug; see {@link compareGreedy}). `expected[i]`, when given, is the engine
 * generator's own text for prompt i, which must be its greedy path.
 */
export async function expectGreedyParity(
  engine: DecoderEngine,
  reference: TextGenerator,
  prompts: readonly number[][],
  maxNew: (i: number) => number,
  noise: number,
  expected?: readonly string[],
): Promise<ParityReport> {
  const tokenizer = reference.tokenizer;
  const eos = tokenizer.eosTokenId;
  const decode = (t: number[]) => tokenizer.decode(t.filter((x) => x !== eos));
  const report: ParityReport = { compared: 0, knifeEdges: 0, identical: 0 };
  for (let i = 0; i < prompts.length; i++) {
    const [ref] = await reference.generate([{ promptIds: prompts[i], maxNewTokens: maxNew(i) }]);
    if (ref.finishReason === 'error') throw ref.error;
    const path = await greedyPath(engine, prompts[i], maxNew(i), eos);
    if (expected) expect(decode(path.tokens), 'the engine generator follows its own greedy path').toBe(expected[i]);
    const result = compareGreedy(path, ref.text, decode, noise);
    expect(result.mismatchAt, `prompt ${i}: transformers.js parts from the engine at a decisive step`).toBe(-1);
    if (result.knifeEdgeAt >= 0) report.knifeEdges++;
    else {
      expect(path.tokens.filter((t) => t !== eos)).toHaveLength(ref.generatedTokens);
      report.identical++;
    }
    report.compared += result.agreed;
  }
  return report;
}
