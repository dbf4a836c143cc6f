import type { DecoderEngine } from '../../src/inference/decoder-engine.js';

/**
 * Times `steps` decode steps of an engine whose live sequences are handles 1..`rows`, each step alone, after one
 * untimed step (every sequence is fed the same token). Returns the milliseconds of each step.
 */
export async function timeDecodeSteps(engine: DecoderEngine, rows: number, steps: number): Promise<number[]> {
  const tokens = new Map(Array.from({ length: rows }, (_, k) => [k + 1, 262] as [number, number]));
  await engine.decode(tokens);
  const ms: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await engine.decode(tokens);
    ms.push(performance.now() - t0);
  }
  return ms;
}
