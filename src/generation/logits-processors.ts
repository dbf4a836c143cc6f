/**
 * Logits processors: small composable steps applied to one row of next-token logits before sampling, each with one
 * method, in the manner of transformers.js `generation/logits_process`. They work in place on a Float32Array of
 * vocabulary size; `-Infinity` removes a token.
 */
export interface LogitsProcessor {
  /** Adjusts `logits` in place, given the tokens so far (prompt and generated). */
  apply(logits: Float32Array, tokens: readonly number[]): void;
}

/** CTRL's repetition penalty: logits of tokens already seen are divided (if positive) or multiplied by `penalty`. */
export class RepetitionPenaltyProcessor implements LogitsProcessor {
  constructor(private readonly penalty: number) {}

  apply(logits: Float32Array, tokens: readonly number[]): void {
    for (const t of new Set(tokens)) {
      const v = logits[t];
      logits[t] = v > 0 ? v / this.penalty : v * this.penalty;
    }
  }
}

/**
 * Removes the end-of-text tokens until `min` tokens have been generated after a prompt of `promptLength`, as
 * transformers' `MinNewTokensLengthLogitsProcessor`: the sequence goes on with its next most likely token.
 */
export class MinNewTokensProcessor implements LogitsProcessor {
  constructor(
    private readonly promptLength: number,
    private readonly min: number,
    private readonly eosTokenIds: readonly number[],
  ) {}

  apply(logits: Float32Array, tokens: readonly number[]): void {
    if (tokens.length - this.promptLength >= this.min) return;
    for (const eos of this.eosTokenIds) logits[eos] = -Infinity;
  }
}

/** Divides every logit by the temperature (> 0). */
export class TemperatureWarper implements LogitsProcessor {
  constructor(private readonly temperature: number) {}

  apply(logits: Float32Array): void {
    for (let i = 0; i < logits.length; i++) logits[i] /= this.temperature;
  }
}

/** Keeps the `k` highest logits (ties at the threshold kept) and removes the rest. */
export class TopKWarper implements LogitsProcessor {
  constructor(private readonly k: number) {}

  apply(logits: Float32Array): void {
    if (this.k >= logits.length) return;
    const threshold = kthLargest(logits, this.k);
    for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = -Infinity;
  }
}

/** Nucleus filtering: keeps the smallest set of most likely tokens whose probability reaches `p`. */
export class TopPWarper implements LogitsProcessor {
  constructor(private readonly p: number) {}

  apply(logits: Float32Array): void {
    if (this.p >= 1) return;
    const probs = softmax(logits);
    const order = Array.from(probs.keys())
      .filter((i) => probs[i] > 0)
      .sort((a, b) => probs[b] - probs[a] || a - b);
    let mass = 0;
    let keep = 0;
    while (keep < order.length) {
      mass += probs[order[keep++]];
      if (mass >= this.p) break;
    }
    const kept = new Set(order.slice(0, Math.max(1, keep)));
    for (let i = 0; i < logits.length; i++) if (!kept.has(i)) logits[i] = -Infinity;
  }
}

/** Numerically stable softmax into a new array. */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = logits[i] === -Infinity ? 0 : Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** The k-th largest value (1-based) of `values`. */
function kthLargest(values: Float32Array, k: number): number {
  return Float32Array.from(values).sort().reverse()[k - 1];
}
