import { describe, expect, it } from 'vitest';
import {
  gpt2Work,
  llamaWork,
  matmulFlops,
  roofline,
  tokenFlops,
  workloadFlops,
} from '../../bench/lib/workload-flops.js';

// GPT-2 small.
const C = 768;
const LAYERS = 12;
const VOCAB = 50257;
const W = gpt2Work(C, LAYERS, VOCAB);

describe('bench:inference FLOP arithmetic', () => {
  it('counts a product as a multiply and an add per term', () => {
    expect(matmulFlops(1, 2, 3)).toBe(12);
    expect(matmulFlops(64, C, 3 * C)).toBe(2 * 64 * 768 * 2304);
  });

  it('counts a GPT-2 small token as twice its block weights plus attention over what it sees', () => {
    // The usual estimate, 2 FLOPs per non-embedding weight: 12 blocks of 12·C² weights (c_attn 3C², c_proj C²,
    // c_fc 4C², mlp c_proj 4C²) = 84,934,656 weights → 169,869,312 FLOPs; the first token adds q·k and p·v over one key.
    expect(tokenFlops(W, 0)).toBe(2 * 84_934_656 + LAYERS * 4 * C);
    expect(tokenFlops(W, 0)).toBe(169_906_176);
    // Each further position adds one key to attend to, in every layer.
    expect(tokenFlops(W, 100) - tokenFlops(W, 99)).toBe(LAYERS * 4 * C);
  });

  it('counts a SmolLM2-135M token from its grouped-query and SwiGLU projections', () => {
    const w = llamaWork({
      hidden: 576,
      nLayer: 30,
      vocabSize: 49152,
      nHead: 9,
      nKvHead: 3,
      headDim: 64,
      intermediate: 1536,
    });
    // Per block: q 576², k and v 576·192 each, o 576², gate, up and down 576·1536 each = 3,538,944 weights; with the
    // 49,152 × 576 tied embedding and the 61 norms of 576, 30 blocks make the 134,515,008 parameters the converter reads.
    expect(w.blockFlops).toBe(2 * 3_538_944);
    expect(30 * 3_538_944 + 49_152 * 576 + 61 * 576).toBe(134_515_008);
    expect(tokenFlops(w, 0)).toBe(30 * (2 * 3_538_944 + 4 * 576));
  });

  it('feeds the prompt and every generated token but the last, and runs the LM head once per generated token', () => {
    const one = workloadFlops([{ promptTokens: 3, generatedTokens: 2 }], W);
    const fed = [0, 1, 2, 3].reduce((sum, pos) => sum + tokenFlops(W, pos), 0);
    expect(one).toBe(fed + 2 * 2 * C * VOCAB);
    // A sequence that generated nothing costs its prompt only; sequences add up.
    expect(workloadFlops([{ promptTokens: 5, generatedTokens: 0 }], W)).toBe(
      [0, 1, 2, 3, 4].reduce((s, pos) => s + tokenFlops(W, pos), 0),
    );
    expect(
      workloadFlops(
        [
          { promptTokens: 3, generatedTokens: 2 },
          { promptTokens: 3, generatedTokens: 2 },
        ],
        W,
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
