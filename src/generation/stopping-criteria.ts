/** What a stopping criterion sees after each generated token. */
export interface GenerationState {
  /** Generated token ids so far (the newest last). */
  readonly tokens: readonly number[];
  /** Generated text so far. */
  readonly text: string;
}

/** Decides whether a sequence is finished; one method each, composable. */
export interface StoppingCriterion {
  /** True when generation must stop after the newest token. */
  isDone(state: GenerationState): boolean;
}

/** Stops after `max` tokens. */
export class MaxNewTokensCriterion implements StoppingCriterion {
  constructor(private readonly max: number) {}

  isDone(state: GenerationState): boolean {
    return state.tokens.length >= this.max;
  }
}

/** Stops when the newest token is an end-of-sequence token. */
export class EosTokenCriterion implements StoppingCriterion {
  private readonly eos: ReadonlySet<number>;

  constructor(eosTokenIds: readonly number[]) {
    this.eos = new Set(eosTokenIds);
  }

  isDone(state: GenerationState): boolean {
    const last = state.tokens[state.tokens.length - 1];
    return last !== undefined && this.eos.has(last);
  }
}

/** Stops when the generated text contains one of the stop strings. */
export class StopStringCriterion implements StoppingCriterion {
  constructor(private readonly stops: readonly string[]) {}

  isDone(state: GenerationState): boolean {
    return this.stops.some((s) => s.length > 0 && state.text.includes(s));
  }

  /** The text cut just before the earliest stop string (unchanged when none occurs). */
  cut(text: string): string {
    let end = text.length;
    for (const s of this.stops) {
      const i = s.length > 0 ? text.indexOf(s) : -1;
      if (i >= 0 && i < end) end = i;
    }
    return text.slice(0, end);
  }

  /** Length of the longest suffix of `text` that could still grow into a stop string; streaming holds it back. */
  pendingSuffix(text: string): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
        if (text.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    return hold;
  }
}
