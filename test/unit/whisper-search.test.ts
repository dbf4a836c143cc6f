import { describe, expect, it } from 'vitest';
import { BeamSearch, topK } from '../../src/voice/whisper-search.js';

const END = 0;
/** Logits over a 5-token vocabulary whose softmax is `probs` (tokens 0 … 4; 0 ends). */
const logits = (...probs: number[]) => Float32Array.from(probs, (p) => Math.log(p));
const none = { always: [], atBegin: [] };

/**
 * A toy model: after the prefix [], token 1 is likelier than 2, but 1 leads to a flat continuation and 2 to a sure
 * one, so the best sequence overall starts with the less likely token. Rows are answered by their prefix.
 */
function model(prefix: readonly number[]): Float32Array {
  const key = prefix.join(',');
  if (key === '') return logits(0.01, 0.55, 0.4, 0.02, 0.02);
  if (key === '1') return logits(0.3, 0.1, 0.2, 0.2, 0.2);
  if (key === '2') return logits(0.02, 0.01, 0.01, 0.95, 0.01);
  return logits(0.96, 0.01, 0.01, 0.01, 0.01);
}

function run(search: BeamSearch): number[][] {
  let prefixes: number[][] = [[]];
  while (!search.done) {
    const next = search.step(prefixes.map(model));
    prefixes = next.parents.map((p, i) => [...prefixes[p], next.tokens[i]]);
  }
  return search.results().map((r) => r.tokens);
}

describe('beam search over a step function', () => {
  it('with one beam is greedy: the likeliest token each step, ending at the end token', () => {
    expect(run(new BeamSearch({ beam: 1, maxTokens: 10, endToken: END, suppress: none }))[0]).toEqual([1]);
  });

  it('with more beams finds the likelier sequence that greedy passes by, and ranks by log-probability per token', () => {
    const search = new BeamSearch({ beam: 3, maxTokens: 10, endToken: END, suppress: none });
    const found = run(search);
    expect(found[0]).toEqual([2, 3]);
    const scores = search.results().map((r) => r.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(search.results()[0].logProb).toBeCloseTo(Math.log(0.4 * 0.95 * 0.96), 5);
  });

  it('never writes a suppressed token, nor at the first step one suppressed at the beginning', () => {
    const found = run(
      new BeamSearch({ beam: 1, maxTokens: 10, endToken: END, suppress: { always: [3], atBegin: [1] } }),
    );
    // Without 3 after 2, ending is likeliest.
    expect(found[0]).toEqual([2]);
  });

  it('cuts hypotheses at maxTokens, without the end token', () => {
    const search = new BeamSearch({ beam: 2, maxTokens: 1, endToken: END, suppress: none });
    expect(run(search).sort()).toEqual([[1], [2]]);
  });

  it('takes the k largest, largest first', () => {
    expect(topK(Float32Array.of(0.1, 3, -Infinity, 2, 3), 3)).toEqual([
      { token: 1, value: 3 },
      { token: 4, value: 3 },
      { token: 3, value: 2 },
    ]);
  });
});
