/** FLOPs of one x · W: `rows` rows of K inputs times a [K, N] weight, one multiply and one add per term. */
export function matmulFlops(rows: number, K: number, N: number): number {
  return 2 * rows * K * N;
}

/** What a model spends per token: its blocks' projections, and the width of attention's q·k and p·v products. */
export interface ModelWork {
  /** Width of the residual stream (the LM head's K). */
  C: number;
  layers: number;
  vocab: number;
  /** FLOPs of one block's projections for one token. */
  blockFlops: number;
  /** Query heads × head size: attention's products cost 2 · this · keys, each. */
  attentionWidth: number;
  /** The projections as [name, K, N], for the MatMul roofline. */
  projections: Array<[string, number, number]>;
}

/**
 * GPT-2 (width C): the four projections, C → 3C (q, k, v), C → C, C → 4C and 4C → C, that is 2·C·(3C + C + 4C) +
 * 2·4C·C = 24C² per block.
 */
export function gpt2Work(C: number, layers: number, vocab: number): ModelWork {
  const projections: Array<[string, number, number]> = [
    ['qkv', C, 3 * C],
    ['proj', C, C],
    ['fc', C, 4 * C],
    ['fc-proj', 4 * C, C],
  ];
  return { C, layers, vocab, blockFlops: 24 * C * C, attentionWidth: C, projections };
}

/** A Llama-family block: q, k, v (grouped: k and v are narrower), o, and the SwiGLU MLP's gate, up and down. */
export function llamaWork(s: {
  hidden: number;
  nLayer: number;
  vocabSize: number;
  nHead: number;
  nKvHead: number;
  headDim: number;
  intermediate: number;
}): ModelWork {
  const C = s.hidden;
  const q = s.nHead * s.headDim;
  const kv = s.nKvHead * s.headDim;
  const projections: Array<[string, number, number]> = [
    ['qkv', C, q + 2 * kv],
    ['o', q, C],
    ['gate-up', C, 2 * s.intermediate],
    ['down', s.intermediate, C],
  ];
  const blockFlops = projections.reduce((f, [, K, N]) => f + 2 * K * N, 0);
  return { C, layers: s.nLayer, vocab: s.vocabSize, blockFlops, attentionWidth: q, projections };
}

/**
 * FLOPs spent on the token at position `pos` (0-based), LM head excluded: every block's projections, and attention
 * over the pos + 1 keys it may see, q·k and probabilities·v. Elementwise work (norms, activations, softmax, biases)
 * is left out, as rooflines of GEMM-bound models do.
 */
export function tokenFlops(w: ModelWork, pos: number): number {
  return w.layers * (w.blockFlops + 4 * w.attentionWidth * (pos + 1));
}

/** One generated sequence as the workload counts it. */
export interface SequenceWork {
  promptTokens: number;
  generatedTokens: number;
}

/**
 * FLOPs of generating `sequences`: every token fed to the model goes through every block (the prompt, then each
 * generated token but the last, which is returned and never fed), and the LM head (C × V) runs once per generated
 * token, on the position that predicts it.
 */
export function workloadFlops(sequences: readonly SequenceWork[], w: ModelWork): number {
  let flops = 0;
  for (const s of sequences) {
    const fed = s.promptTokens + Math.max(0, s.generatedTokens - 1);
    for (let pos = 0; pos < fed; pos++) flops += tokenFlops(w, pos);
    flops += s.generatedTokens * matmulFlops(1, w.C, w.vocab);
  }
  return flops;
}

/** The roofline of a run: the least time the workload takes at the peak, and the fraction of it the run achieved. */
export interface Roofline {
  minSeconds: number;
  achievedFraction: number;
  /** The run beat the peak: the peak was measured too low (a busy machine), so the fraction is not a result. */
  measurementError: boolean;
}

/** Roofline of `flops` run in `seconds` against a peak of `peakGflops`. */
export function roofline(flops: number, peakGflops: number, seconds: number): Roofline {
  const minSeconds = flops / (peakGflops * 1e9);
  return { minSeconds, achievedFraction: minSeconds / seconds, measurementError: minSeconds > seconds };
}
