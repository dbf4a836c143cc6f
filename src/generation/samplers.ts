import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { softmax } from './logits-processors.js';

/** Picks the next token from processed logits. */
export interface Sampler {
  /** The chosen token id. */
  sample(logits: Float32Array): number;
}

/** Greedy decoding: the highest logit, the lowest id on ties (so batched and unbatched runs agree). */
export class GreedySampler implements Sampler {
  sample(logits: Float32Array): number {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
}

/**
 * Multinomial sampling from the softmax, with a generator of the request's own: each token consumes exactly one
 * draw, so a seeded reply is the same whatever else is in the batch.
 */
export class SeededSampler implements Sampler {
  private readonly rng;

  constructor(seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  sample(logits: Float32Array): number {
    const probs = softmax(logits);
    const u = uniformFloat64(this.rng);
    let acc = 0;
    let last = 0;
    for (let i = 0; i < probs.length; i++) {
      if (probs[i] === 0) continue;
      acc += probs[i];
      last = i;
      if (u < acc) return i;
    }
    return last;
  }
}
