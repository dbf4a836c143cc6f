import { describe, expect, it } from 'vitest';
import { matmulFlops, roofline, tokenFlops, workloadFlops } from '../../bench/lib/workload-flops.js';

// GPT-2 small.
const C = 768;
const LAYERS = 12;
const VOCAB = 50257;

describe('bench:inference FLOP arithmetic', () => {
  it('counts a product as a multiply and an add per term', () => {
    expect(matmulFlops(1, 2, 3)).toBe(12);
    expect(matmulFlops(64, C, 3 * C)).toBe(2 * 64 * 768 * 2304);
  });

  it('counts a GPT-2 small token as twice its block weights plus attention over what it sees', () => {
    // The usual estimate, 2 FLOPs per non-embedding weight: 12 blocks of 12·C² weights (c_attn 3C², c_proj C²,
    // c_fc 4C², mlp c_proj 4C²) = 84,934,656 weights → 169,869,312 FLOPs; the first token adds q·k and p·v over one key.
    expect(tokenFlops(C, LAYERS, 0)).toBe(2 * 84_934_656 + LAYERS * 4 * C);
    expect(tokenFlops(C, LAYERS, 0)).toBe(169_906_176);
    // Each further position adds one key to attend to, in every layer.
    expect(tokenFlops(C, LAYERS, 100) - tokenFlops(C, LAYERS, 99)).toBe(LAYERS * 4 * C);
  });

  it('feeds the prompt and every generated token but the last, and runs the LM head once per generated token', () => {
    const one = workloadFlops([{ promptTokens: 3, generatedTokens: 2 }], C, LAYERS, VOCAB);
    const fed = [0, 1, 2, 3].reduce((sum, pos) => sum + tokenFlops(C, LAYERS, pos), 0);
    expect(one).toBe(fed + 2 * 2 * C * VOCAB);
    // A sequence that generated nothing costs its prompt only; sequences add up.
    expect(workloadFlops([{ promptTokens: 5, generatedTokens: 0 }], C, LAYERS, VOCAB)).toBe(
      [0, 1, 2, 3, 4].reduce((s, pos) => s + tokenFlops(C, LAYERS, pos), 0),
    );
    expect(
      workloadFlops(
        [
          { promptTokens: 3, generatedTokens: 2 },
          { promptTokens: 3, generatedTokens: 2 },
        ],
        C,
        LAYERS,
        VOCAB,
      ),
    ).toBe(2 * one);
  });

  it('reports a run faster than the peak allows as a measurement error, not a fraction above 1', () => {
    expect(roofline(300e9, 100, 6)).toEqual({ minSeconds: 3, achievedFraction: 0.5, measurementError: false });
    const tooFast = roofline(300e9, 100, 2.5);
    expect(tooFast.achievedFraction).toBeCloseTo(1.2);
    expect(tooFast.measurementError).toBe(true);
  });
});
