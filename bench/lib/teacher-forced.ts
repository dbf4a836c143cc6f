import type { DecoderEngine } from '../../src/inference/decoder-engine.js';

/**
 * Each chunk's next-token logits at every position after its first `prefix` tokens, with the chunk's own tokens fed
 * back (teacher forcing), all chunks decoding together as one batch. `onStep` receives position k's logits of each
 * chunk; nothing is kept, so thousands of positions over a 49,152-token vocabulary cost no memory.
 */
export async function teacherForcedBatch(
  engine: DecoderEngine,
  chunks: readonly number[][],
  prefix: number,
  onStep: (chunk: number, position: number, logits: Float32Array) => void,
): Promise<void> {
  const handles = chunks.map((_, i) => i + 1);
  const first = await engine.prefill(
    chunks.map((c, i) => ({ handle: handles[i], tokens: c.slice(0, prefix), slots: c.length + 1 })),
  );
  first.forEach((l, i) => onStep(i, prefix, l));
  const length = Math.min(...chunks.map((c) => c.length));
  for (let k = prefix; k < length - 1; k++) {
    const out = await engine.decode(new Map(handles.map((h, i) => [h, chunks[i][k]])));
    handles.forEach((h, i) => onStep(i, k + 1, out.get(h)!));
  }
  for (const h of handles) engine.release(h);
}

/** Greedy continuations of several prompts, decoded together. */
export async function greedyBatch(
  engine: DecoderEngine,
  prompts: readonly number[][],
  steps: number,
): Promise<number[][]> {
  const handles = prompts.map((_, i) => i + 1);
  const first = await engine.prefill(
    prompts.map((p, i) => ({ handle: handles[i], tokens: p, slots: p.length + steps + 1 })),
  );
  const out = first.map((l) => [argmaxOf(l)]);
  for (let s = 1; s < steps; s++) {
    const next = await engine.decode(new Map(handles.map((h, i) => [h, out[i][s - 1]])));
    handles.forEach((h, i) => out[i].push(argmaxOf(next.get(h)!)));
  }
  for (const h of handles) engine.release(h);
  return out;
}

function argmaxOf(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
