import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';

/**
 * Deterministic normal samples from a seed (Box–Muller over xoroshiro128+), so that the same seed forges
 * byte-identical weights on every machine.
 */
export class SeededNormal {
  private readonly rng;
  private spare: number | null = null;

  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  /** Next sample of N(0, 1). */
  next(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    // 1 - u keeps the logarithm's argument in (0, 1].
    const u = 1 - uniformFloat64(this.rng);
    const v = uniformFloat64(this.rng);
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fills `out` with N(0, std²) samples. */
  fill(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.next() * std;
    return out;
  }
}
