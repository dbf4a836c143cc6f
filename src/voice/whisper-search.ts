/** Tokens a step may not write: `always` at every step, `atBegin` also at the first (Whisper's suppress lists). */
export interface Suppression {
  always: readonly number[];
  atBegin: readonly number[];
}

/** How one utterance is searched. */
export interface SearchOptions {
  /** Beams kept (1: greedy). Searching stops once this many hypotheses have ended. */
  beam: number;
  /** Most tokens written per hypothesis; a hypothesis cut there ends without `endToken`. */
  maxTokens: number;
  endToken: number;
  suppress: Suppression;
}

/** An ended hypothesis: its tokens (without the end token), summed log-probability and length-normalised score. */
export interface Ended {
  tokens: number[];
  logProb: number;
  /** logProb per token written (the end token's log-probability counted, not its length), as CTranslate2 ranks. */
  score: number;
}

/** What the caller runs next: one row per live beam, each continuing the row `parent` of the last step with `token`. */
export interface NextRows {
  parents: number[];
  tokens: number[];
}

interface Beam {
  tokens: number[];
  logProb: number;
}

/**
 * Beam search over one utterance, in the way CTranslate2 searches Whisper: each step ranks every live beam's
 * continuations by summed log-probability, keeps the best `beam` that do not end, and sets aside those that end
 * while still among the best `beam`. With `beam` 1 it is greedy search. It knows tokens and scores only; the caller
 * runs the model on the rows it asks for and reorders its cache by `parents`.
 */
export class BeamSearch {
  private live: Beam[] = [{ tokens: [], logProb: 0 }];
  private readonly ended: Ended[] = [];

  constructor(private readonly opts: SearchOptions) {
    if (opts.beam < 1 || opts.maxTokens < 1) throw new RangeError('beam and maxTokens must be at least 1');
  }

  /** Rows the next step runs (1 before the first step: every beam starts from the same prompt). */
  get rows(): number {
    return this.live.length;
  }

  get done(): boolean {
    return this.live.length === 0 || this.ended.length >= this.opts.beam;
  }

  /** Takes the logits of each live row (in row order) and returns the rows of the next step. */
  step(logits: readonly Float32Array[]): NextRows {
    if (logits.length !== this.live.length) throw new RangeError(`${logits.length} logit rows for ${this.rows} beams`);
    const k = this.opts.beam;
    const candidates: Array<{ parent: number; token: number; logProb: number }> = [];
    logits.forEach((row, parent) => {
      const lp = this.logProbs(row, this.live[parent].tokens.length === 0);
      for (const { token, value } of topK(lp, 2 * k))
        candidates.push({ parent, token, logProb: this.live[parent].logProb + value });
    });
    candidates.sort((a, b) => b.logProb - a.logProb || a.parent - b.parent || a.token - b.token);
    const next: Beam[] = [];
    const out: NextRows = { parents: [], tokens: [] };
    for (const [rank, c] of candidates.entries()) {
      if (next.length === k) break;
      const tokens = this.live[c.parent].tokens;
      if (c.token === this.opts.endToken) {
        if (rank < k) this.end(tokens, c.logProb);
        continue;
      }
      next.push({ tokens: [...tokens, c.token], logProb: c.logProb });
      out.parents.push(c.parent);
      out.tokens.push(c.token);
    }
    this.live = next;
    if (this.ended.length >= k) this.live = [];
    else if (next.length > 0 && next[0].tokens.length >= this.opts.maxTokens) {
      // Cut at the bound: what is still live ends as it is.
      for (const b of next) this.end(b.tokens, b.logProb);
      this.live = [];
    }
    return this.live.length > 0 ? out : { parents: [], tokens: [] };
  }

  /** The ended hypotheses, best score first. */
  results(): Ended[] {
    return [...this.ended].sort((a, b) => b.score - a.score);
  }

  private end(tokens: number[], logProb: number): void {
    this.ended.push({ tokens, logProb, score: logProb / Math.max(1, tokens.length) });
  }

  private logProbs(row: Float32Array, first: boolean): Float32Array {
    const lp = Float32Array.from(row);
    for (const t of this.opts.suppress.always) lp[t] = -Infinity;
    if (first) for (const t of this.opts.suppress.atBegin) lp[t] = -Infinity;
    return logSoftmax(lp);
  }
}

/** log(softmax(x)), in place. */
export function logSoftmax(x: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of x) if (v > max) max = v;
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const log = max + Math.log(sum);
  for (let i = 0; i < x.length; i++) x[i] -= log;
  return x;
}

/** The `k` largest entries, largest first (ties: lower index first). */
export function topK(x: Float32Array, k: number): Array<{ token: number; value: number }> {
  const best: Array<{ token: number; value: number }> = [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v === -Infinity || (best.length === k && v <= best[k - 1].value)) continue;
    let at = best.length;
    while (at > 0 && best[at - 1].value < v) at--;
    best.splice(at, 0, { token: i, value: v });
    if (best.length > k) best.pop();
  }
  return best;
}
