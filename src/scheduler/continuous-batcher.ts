/**
 * What the scheduler needs from a model runtime: add sequences (prefill), advance all of them (decode), drop one.
 * Sequences are plain numeric handles; the scheduler never sees tensors.
 */
export interface SequenceBackend {
  /** Cached-token slots that live sequences with these budgets take, padding included. */
  footprint(budgets: readonly number[]): number;
  prefill(
    entries: ReadonlyArray<{ handle: number; tokens: readonly number[]; slots: number }>,
  ): Promise<Float32Array[]>;
  decode(tokens: ReadonlyMap<number, number>): Promise<Map<number, Float32Array>>;
  release(handle: number): void;
}

/**
 * One sequence as the scheduler drives it. `next` turns next-token scores into the token to feed, or `null` when the
 * sequence is finished; the sequence owns sampling, stopping and streaming.
 */
export interface ScheduledSequence {
  /** Prompt token ids, already cut to fit the window. */
  readonly promptTokens: readonly number[];
  /** Cache slots the sequence may use: prompt plus most new tokens. */
  readonly tokenBudget: number;
  /** The next token to feed, or null when finished. */
  next(scores: Float32Array): number | null;
  /** Called with the error when the step running this sequence failed. */
  fail(err: unknown): void;
}

/** Limits that bound memory. */
export interface BatcherLimits {
  /** Most sequences running at once. */
  maxBatchSize: number;
  /** Most cached-token slots the running sequences may take ({@link SequenceBackend.footprint}). */
  maxCachedTokens: number;
}

/**
 * Iteration-level scheduling, as in text-generation-inference: every step advances each running sequence by one
 * token; a finished sequence leaves the batch at that step and waiting ones are prefilled and join at the next, as
 * long as the batch size and the cached-token budget allow. Requests beyond the limits wait, and `hasCapacity`
 * tells producers to slow down instead of letting memory grow.
 */
export class ContinuousBatcher {
  private readonly waiting: ScheduledSequence[] = [];
  private readonly running = new Map<number, { seq: ScheduledSequence; token: number }>();
  private nextHandle = 1;
  private loop: Promise<void> | undefined;
  private capacityWaiters: Array<() => void> = [];
  /** Set when the step loop itself failed (not a request): the batcher then refuses every request. */
  private broken: Error | undefined;
  private readonly fatalListeners: Array<(err: Error) => void> = [];
  /** Decode steps, prefill calls, sequences prefilled (each runs through the model once) and sequences per step. */
  readonly stats = { steps: 0, prefills: 0, admitted: 0, stepSizes: 0 };

  constructor(
    private readonly backend: SequenceBackend,
    private readonly limits: BatcherLimits,
  ) {}

  /**
   * Calls `listener` once if the step loop fails for a reason no request owns (a bug, not a bad request): every
   * running and waiting sequence has been failed with the error, and later ones are refused. A process should stop
   * then, so that its supervisor starts a fresh one.
   */
  onFatal(listener: (err: Error) => void): void {
    this.fatalListeners.push(listener);
  }

  /** Queues a sequence; it runs as soon as the limits allow. */
  submit(seq: ScheduledSequence): void {
    if (this.broken) {
      seq.fail(new Error(`the scheduler stopped after a failure of its own: ${this.broken.message}`));
      return;
    }
    const alone = this.backend.footprint([seq.tokenBudget]);
    if (alone > this.limits.maxCachedTokens) {
      seq.fail(
        new RangeError(`request needs ${alone} cached tokens, more than the limit of ${this.limits.maxCachedTokens}`),
      );
      return;
    }
    this.waiting.push(seq);
    this.ensureLoop();
  }

  /**
   * Starts the step loop unless it runs; a request that arrives while it winds down restarts it. The first step waits
   * for the current tick to end, so requests submitted together are prefilled together.
   */
  private ensureLoop(): void {
    this.loop ??= Promise.resolve()
      .then(() => this.run())
      .then(
        () => {
          this.loop = undefined;
          if (this.waiting.length > 0) this.ensureLoop();
        },
        (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
      );
  }

  /** The loop failed: every sequence fails with the error, the batcher refuses new ones, and the listeners hear it. */
  private fail(err: Error): void {
    this.broken = err;
    for (const { seq } of this.running.values()) seq.fail(err);
    for (const seq of this.waiting.splice(0)) seq.fail(err);
    this.running.clear();
    this.notifyCapacity();
    for (const listener of this.fatalListeners) listener(err);
  }

  /** Sequences running and waiting. */
  get load(): { running: number; waiting: number; cachedTokens: number } {
    return {
      running: this.running.size,
      waiting: this.waiting.length,
      cachedTokens: this.backend.footprint(this.runningBudgets()),
    };
  }

  /** True when a new request would start at the next step rather than wait. */
  hasCapacity(): boolean {
    return this.waiting.length === 0 && this.running.size < this.limits.maxBatchSize;
  }

  /** Resolves when {@link hasCapacity} becomes true. */
  whenCapacity(): Promise<void> {
    if (this.hasCapacity()) return Promise.resolve();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    while (this.waiting.length > 0 || this.running.size > 0) {
      const admitted = this.admit();
      if (admitted.length > 0) await this.prefill(admitted);
      if (this.running.size > 0) await this.decode();
      this.notifyCapacity();
    }
  }

  private runningBudgets(): number[] {
    return [...this.running.values()].map((r) => r.seq.tokenBudget);
  }

  /**
   * Admits waiting sequences in order while the batch size and the cache's footprint allow. The footprint counts
   * padding (every row is as long as the longest), so one long request shrinks what short ones may join it.
   */
  private admit(): Array<{ handle: number; seq: ScheduledSequence }> {
    const out: Array<{ handle: number; seq: ScheduledSequence }> = [];
    const budgets = this.runningBudgets();
    while (this.waiting.length > 0 && this.running.size + out.length < this.limits.maxBatchSize) {
      const seq = this.waiting[0];
      if (this.backend.footprint([...budgets, seq.tokenBudget]) > this.limits.maxCachedTokens) break;
      this.waiting.shift();
      budgets.push(seq.tokenBudget);
      out.push({ handle: this.nextHandle++, seq });
    }
    return out;
  }

  private async prefill(admitted: Array<{ handle: number; seq: ScheduledSequence }>): Promise<void> {
    let scores: Float32Array[];
    try {
      scores = await this.backend.prefill(
        admitted.map(({ handle, seq }) => ({ handle, tokens: seq.promptTokens, slots: seq.tokenBudget })),
      );
    } catch (err) {
      for (const a of admitted) a.seq.fail(err);
      return;
    }
    this.stats.prefills++;
    this.stats.admitted += admitted.length;
    admitted.forEach(({ handle, seq }, i) => {
      this.running.set(handle, { seq, token: -1 });
      this.advance(handle, scores[i]);
    });
  }

  private async decode(): Promise<void> {
    const tokens = new Map([...this.running].map(([h, r]) => [h, r.token]));
    let scores: Map<number, Float32Array>;
    try {
      scores = await this.backend.decode(tokens);
    } catch (err) {
      // A failed step poisons the whole running batch's cache state: fail and drop every running sequence.
      for (const handle of [...this.running.keys()]) {
        const { seq } = this.running.get(handle)!;
        this.finish(handle);
        seq.fail(err);
      }
      return;
    }
    this.stats.steps++;
    this.stats.stepSizes += tokens.size;
    for (const [handle, s] of scores) this.advance(handle, s);
  }

  private advance(handle: number, scores: Float32Array): void {
    const entry = this.running.get(handle)!;
    let token: number | null;
    try {
      token = entry.seq.next(scores);
    } catch (err) {
      this.finish(handle);
      entry.seq.fail(err);
      return;
    }
    if (token === null) this.finish(handle);
    else entry.token = token;
  }

  private finish(handle: number): void {
    const entry = this.running.get(handle);
    if (!entry) return;
    this.running.delete(handle);
    this.backend.release(handle);
  }

  private notifyCapacity(): void {
    if (!this.hasCapacity() || this.capacityWaiters.length === 0) return;
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of waiters) w();
  }
}
