/** FLOPs of one x · W: `rows` rows of K inputs times a [K, N] weight, one multiply and one add per term. */
export function matmulFlops(rows: number, K: number, N: number): number {
  return 2 * rows * K * N;
}

/**
 * FLOPs GPT-2 (width C, `layers` blocks) spends on the token at position `pos` (0-based), LM head excluded. Per
 * block: the four projections, C → 3C (q, k, v), C → C, C → 4C and 4C → C, that is 2·C·(3C + C + 4C) + 2·4C·C = 24C²;
 * and attention over the pos + 1 keys it may see, q·k and probabilities·v, 2·C·(pos + 1) each. Elementwise work
 * (LayerNorm, GELU, softmax, biases) is left out, as rooflines of GEMM-bound models do.
 */
export function tokenFlops(C: number, layers: number, pos: number): number {
  return layers * (24 * C * C + 4 * C * (pos + 1));
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
export function workloadFlops(sequences: readonly SequenceWork[], C: number, layers: number, vocab: number): number {
  let flops = 0;
  for (const s of sequences) {
    const fed = s.promptTokens + Math.max(0, s.generatedTokens - 1);
    for (let pos = 0; pos < fed; pos++) flops += tokenFlops(C, layers, pos);
    flops += s.generatedTokens * matmulFlops(1, C, vocab);
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
