/**
 * The engine's KV cache in JavaScript-owned buffers, fed to ONNX Runtime as inputs every step (read in place, never
 * copied back). Per layer, keys and values are laid out [rows, H, P, D]: each running sequence owns one row with P
 * slots, filled from slot 0; `attention_mask` marks the filled ones. A finished sequence's row is refilled by the
 * last row (one row copy), so the live rows stay contiguous.
 *
 * Two sizes, because they answer different questions. Memory is reserved by budgets: the buffers hold `rowCapacity`
 * rows of `capacity` slots, the longest live budget rounded up to `slotQuantum`, so a sequence can always reach its
 * budget without allocating, and `rowCapacity × capacity` stays within `maxTokens` ({@link footprint} is what the
 * scheduler admits against). What the runtime reads is P, the longest filled row rounded up to `slotQuantum`: decode
 * reads every slot of every row, so reading budgets would stream slots no token has reached yet (a step at batch 32
 * is bound by those reads). P grows when a row fills its last slot and shrinks when the longest row leaves; each
 * change moves the filled slots within the buffers, once per `slotQuantum` tokens at most.
 */
export class KvCache {
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  private rowCapacity = 0;
  /** Slots per row the buffers are sized for (≥ P). */
  private capacity = 0;
  /** Slots per row as laid out and read by the runtime (P). */
  slots = 0;
  /** Live rows. */
  rows = 0;
  /** Filled slots of each live row. */
  readonly lengths: number[] = [];
  /** Slots each live row may fill (its sequence's budget). */
  private readonly budgets: number[] = [];
  /** Largest allocation so far, in bytes. */
  peakBytes = 0;

  constructor(
    private readonly nLayer: number,
    private readonly nHead: number,
    private readonly headDim: number,
    /** Most slots over all allocated rows. */
    private readonly maxTokens: number,
    /** Slot counts are rounded up to this, so that growth (a move or a copy) is rare. */
    private readonly slotQuantum = 64,
  ) {}

  /** Slots a set of live sequences with these budgets occupies: rows × their longest budget, rounded up. */
  footprint(budgets: readonly number[]): number {
    return budgets.length === 0 ? 0 : budgets.length * this.roundSlots(Math.max(...budgets));
  }

  /** Bytes one cached token takes (keys and values of every layer). */
  get bytesPerToken(): number {
    return 2 * this.nLayer * this.nHead * this.headDim * 4;
  }

  private roundSlots(slots: number): number {
    return Math.ceil(slots / this.slotQuantum) * this.slotQuantum;
  }

  /** Floats per row per layer and kind, laid out with `slots` slots. */
  private rowSize(slots = this.slots): number {
    return this.nHead * slots * this.headDim;
  }

  /** Makes room for `rows` rows with budgets of up to `budget` slots, moving live rows into new buffers if needed. */
  reserve(rows: number, budget: number): void {
    const wantCapacity = Math.max(this.capacity, this.roundSlots(budget));
    if (rows * wantCapacity > this.maxTokens)
      throw new RangeError(
        `the KV cache cannot hold ${rows} rows of ${wantCapacity} slots within ${this.maxTokens} tokens`,
      );
    if (rows <= this.rowCapacity && wantCapacity === this.capacity) return;
    // Spare rows make the next admissions copy-free, but only within the bound.
    const spare = Math.max(rows, Math.ceil(this.rowCapacity * 1.5), 4);
    this.reallocate(Math.max(rows, Math.min(spare, Math.floor(this.maxTokens / wantCapacity))), wantCapacity);
  }

  /**
   * Appends a row holding `length` tokens taken from row `srcRow` of prefill outputs shaped [Bn, H, T, D], starting
   * at token `srcStart` (after the row's left padding); the row may fill up to `budget` slots, which {@link reserve}
   * must have made room for. Returns its index.
   */
  addRow(
    newKeys: readonly Float32Array[],
    newValues: readonly Float32Array[],
    srcRow: number,
    srcT: number,
    srcStart: number,
    length: number,
    budget: number,
  ): number {
    if (this.rows >= this.rowCapacity || this.roundSlots(budget) > this.capacity)
      throw new RangeError('KvCache.addRow: no room reserved for the row');
    if (length > this.slots) this.restride(this.roundSlots(length));
    const row = this.rows++;
    this.lengths[row] = length;
    this.budgets[row] = budget;
    const D = this.headDim;
    for (let i = 0; i < this.nLayer; i++) {
      for (let h = 0; h < this.nHead; h++) {
        const from = ((srcRow * this.nHead + h) * srcT + srcStart) * D;
        const to = (row * this.nHead + h) * this.slots * D;
        this.keys[i].set(newKeys[i].subarray(from, from + length * D), to);
        this.values[i].set(newValues[i].subarray(from, from + length * D), to);
      }
    }
    return row;
  }

  /** Writes each live row's newest token (decode outputs shaped [rows, H, 1, D]) into its next slot. */
  appendToken(newKeys: readonly Float32Array[], newValues: readonly Float32Array[]): void {
    const longest = Math.max(...this.lengths) + 1;
    if (longest > this.capacity)
      throw new RangeError(`KvCache.appendToken: a row would pass its budget (${longest} > ${this.capacity} slots)`);
    if (longest > this.slots) this.restride(this.roundSlots(longest));
    const D = this.headDim;
    // Element loops, not set(subarray(…)): a view per 64-float write made this 4.8 ms instead of 3.8 at 64 rows.
    for (let i = 0; i < this.nLayer; i++) {
      const [keys, values, nk, nv] = [this.keys[i], this.values[i], newKeys[i], newValues[i]];
      for (let r = 0; r < this.rows; r++) {
        for (let h = 0; h < this.nHead; h++) {
          const from = (r * this.nHead + h) * D;
          const to = ((r * this.nHead + h) * this.slots + this.lengths[r]) * D;
          for (let d = 0; d < D; d++) {
            keys[to + d] = nk[from + d];
            values[to + d] = nv[from + d];
          }
        }
      }
    }
    for (let r = 0; r < this.rows; r++) this.lengths[r]++;
  }

  /**
   * Removes row `row` by moving the last row into it, then narrows P to the longest remaining row and the buffers to
   * the longest remaining budget. Returns the index the last row had (now `row`), or -1.
   */
  removeRow(row: number): number {
    const last = this.rows - 1;
    if (row !== last) {
      const size = this.rowSize();
      for (let i = 0; i < this.nLayer; i++) {
        this.keys[i].copyWithin(row * size, last * size, (last + 1) * size);
        this.values[i].copyWithin(row * size, last * size, (last + 1) * size);
      }
      this.lengths[row] = this.lengths[last];
      this.budgets[row] = this.budgets[last];
    }
    this.lengths.length = last;
    this.budgets.length = last;
    this.rows = last;
    if (this.rows === 0) this.release();
    else {
      const read = this.roundSlots(Math.max(...this.lengths));
      if (read < this.slots) this.restride(read);
      const needed = this.roundSlots(Math.max(...this.budgets));
      if (needed < this.capacity)
        this.reallocate(Math.min(this.rowCapacity, Math.floor(this.maxTokens / needed)), needed);
    }
    return row !== last ? last : -1;
  }

  /**
   * Appends `T` tokens to each of `count` rows from row `first` (outputs shaped [count, H, T, D]) after their filled
   * slots: a later chunk of their prompts.
   */
  appendTokens(
    newKeys: readonly Float32Array[],
    newValues: readonly Float32Array[],
    first: number,
    count: number,
    T: number,
  ): void {
    const rows = Array.from({ length: count }, (_, b) => first + b);
    const longest = Math.max(...rows.map((r) => this.lengths[r])) + T;
    if (longest > this.capacity)
      throw new RangeError(`KvCache.appendTokens: a row would pass its budget (${longest} > ${this.capacity} slots)`);
    if (longest > this.slots) this.restride(this.roundSlots(longest));
    const D = this.headDim;
    for (const [b, r] of rows.entries()) {
      for (let i = 0; i < this.nLayer; i++) {
        for (let h = 0; h < this.nHead; h++) {
          const from = (b * this.nHead + h) * T * D;
          const to = ((r * this.nHead + h) * this.slots + this.lengths[r]) * D;
          this.keys[i].set(newKeys[i].subarray(from, from + T * D), to);
          this.values[i].set(newValues[i].subarray(from, from + T * D), to);
        }
      }
      this.lengths[r] += T;
    }
  }

  /** Keys of layer i of `count` rows from row `first` (all live rows by default) as [count, H, P, D] data: a view. */
  keysOf(i: number, first = 0, count = this.rows - first): Float32Array {
    return this.keys[i].subarray(first * this.rowSize(), (first + count) * this.rowSize());
  }

  /** Values of layer i of `count` rows from row `first`, as {@link keysOf}. */
  valuesOf(i: number, first = 0, count = this.rows - first): Float32Array {
    return this.values[i].subarray(first * this.rowSize(), (first + count) * this.rowSize());
  }

  /** Tokens held (filled slots over all rows). */
  get filledTokens(): number {
    return this.lengths.reduce((a, b) => a + b, 0);
  }

  /** Bytes allocated for keys and values. */
  get allocatedBytes(): number {
    return 2 * this.nLayer * this.rowCapacity * this.rowSize(this.capacity) * 4;
  }

  /**
   * Lays the live rows out with `slots` slots each (≤ capacity), in place. Each (row, head) block moves to a start
   * at or after its own when growing, so blocks are moved last to first, and first to last when shrinking; no block
   * is overwritten before it has moved.
   */
  private restride(slots: number): void {
    const D = this.headDim;
    const blocks = this.rows * this.nHead;
    const move = (b: number) => {
      const length = this.lengths[Math.floor(b / this.nHead)] * D;
      const from = b * this.slots * D;
      const to = b * slots * D;
      for (let i = 0; i < this.nLayer; i++) {
        this.keys[i].copyWithin(to, from, from + length);
        this.values[i].copyWithin(to, from, from + length);
      }
    };
    if (slots > this.slots) for (let b = blocks - 1; b >= 0; b--) move(b);
    else for (let b = 0; b < blocks; b++) move(b);
    this.slots = slots;
  }

  /** Moves the live rows into buffers of `rowCapacity` rows of `capacity` slots (the layout keeps its P). */
  private reallocate(rowCapacity: number, capacity: number): void {
    const live = this.rows * this.rowSize();
    const move = (old: Float32Array) => {
      const next = new Float32Array(rowCapacity * this.rowSize(capacity));
      next.set(old.subarray(0, live));
      return next;
    };
    // One layer at a time, so old and new buffers coexist for one layer only.
    for (let i = 0; i < this.nLayer; i++) {
      this.keys[i] = move(this.keys[i] ?? new Float32Array(0));
      this.values[i] = move(this.values[i] ?? new Float32Array(0));
    }
    this.rowCapacity = rowCapacity;
    this.capacity = capacity;
    this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
  }

  /** Frees the buffers; memory goes back to the baseline when the batch drains. */
  private release(): void {
    this.keys = [];
    this.values = [];
    this.rowCapacity = 0;
    this.capacity = 0;
    this.slots = 0;
  }
}
