/**
 * [W₁ᵀ | W₂ᵀ | …] as one row-major [K, ΣNₖ] array, from weights of Hugging Face shape [Nₖ, K] ([out, in]): the layout
 * a MatMul x · W takes, several projections of the same input side by side (q, k and v; gate and up; a tied LM head).
 */
export function columnsOf(ws: readonly Float32Array[], outs: readonly number[], K: number): Float32Array {
  const N = outs.reduce((a, b) => a + b, 0);
  const out = new Float32Array(K * N);
  let col = 0;
  ws.forEach((w, k) => {
    for (let n = 0; n < outs[k]; n++) for (let i = 0; i < K; i++) out[i * N + col + n] = w[n * K + i];
    col += outs[k];
  });
  return out;
}
