import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/inference/kv-cache.js';

const LAYERS = 2;
const H = 2;
const D = 3;
const QUANTUM = 4;

/** A value that says where it belongs: layer, key or value, sequence, head, token, channel. */
const code = (i: number, kind: number, seq: number, h: number, t: number, d: number) =>
  i * 1e6 + kind * 1e5 + seq * 1e4 + h * 1e3 + t * 10 + d;

/** Prefill outputs [Bn, H, T, D] per layer for sequences `seqs` (left-padded to T) holding `lengths` tokens. */
function prefillOutputs(seqs: number[], lengths: number[], T: number) {
  const make = (kind: number) =>
    Array.from({ length: LAYERS }, (_, i) => {
      const out = new Float32Array(seqs.length * H * T * D).fill(-1);
      seqs.forEach((seq, b) => {
        const pad = T - lengths[b];
        for (let h = 0; h < H; h++)
          for (let t = 0; t < lengths[b]; t++)
            for (let d = 0; d < D; d++) out[((b * H + h) * T + pad + t) * D + d] = code(i, kind, seq, h, t, d);
      });
      return out;
    });
  return { keys: make(0), values: make(1) };
}

/** Decode outputs [rows, H, 1, D]: token `lengths[r]` of each row's sequence. */
function tokenOutputs(cache: KvCache, seqOfRow: number[]) {
  const make = (kind: number) =>
    Array.from({ length: LAYERS }, (_, i) => {
      const out = new Float32Array(cache.rows * H * D);
      for (let r = 0; r < cache.rows; r++)
        for (let h = 0; h < H; h++)
          for (let d = 0; d < D; d++) out[(r * H + h) * D + d] = code(i, kind, seqOfRow[r], h, cache.lengths[r], d);
      return out;
    });
  return { keys: make(0), values: make(1) };
}

/** Checks every filled slot of every row as the runtime reads it ([rows, H, P, D]), and that P follows the longest. */
function expectContents(cache: KvCache, seqOfRow: number[]) {
  const P = cache.slots;
  expect(P).toBe(Math.ceil(Math.max(...cache.lengths) / QUANTUM) * QUANTUM);
  for (let i = 0; i < LAYERS; i++) {
    const views = [cache.keysOf(i), cache.valuesOf(i)];
    views.forEach((view, kind) => {
      expect(view.length).toBe(cache.rows * H * P * D);
      for (let r = 0; r < cache.rows; r++)
        for (let h = 0; h < H; h++)
          for (let t = 0; t < cache.lengths[r]; t++)
            for (let d = 0; d < D; d++)
              expect(view[((r * H + h) * P + t) * D + d]).toBe(code(i, kind, seqOfRow[r], h, t, d));
    });
  }
}

describe('KvCache', () => {
  it('lays rows out by their longest filled row, not their budgets, and keeps every token through growth, removal and reallocation', () => {
    const cache = new KvCache(LAYERS, H, D, 1000, QUANTUM);
    cache.reserve(2, 10);
    const pre = prefillOutputs([1, 2], [3, 5], 5);
    const seqOfRow = [1, 2];
    cache.addRow(pre.keys, pre.values, 0, 5, 2, 3, 10);
    cache.addRow(pre.keys, pre.values, 1, 5, 0, 5, 9);
    // Budgets reserve 12 slots a row; the runtime reads 8 (5 filled, rounded up).
    expect(cache.slots).toBe(8);
    expect(cache.allocatedBytes).toBe(2 * LAYERS * 4 * H * 12 * D * 4);
    expectContents(cache, seqOfRow);

    // Sequence 2 passes slot 8: P grows to 12, the tokens move with it.
    for (let step = 0; step < 4; step++) {
      const next = tokenOutputs(cache, seqOfRow);
      cache.appendToken(next.keys, next.values);
      expectContents(cache, seqOfRow);
    }
    expect(cache.lengths).toEqual([7, 9]);
    expect(cache.slots).toBe(12);

    // The longest row leaves: P narrows back to the remaining row.
    expect(cache.removeRow(1)).toBe(-1);
    seqOfRow.pop();
    expect(cache.slots).toBe(8);
    expectContents(cache, seqOfRow);

    // A longer budget reallocates (more slots per row), the layout and the tokens stay.
    cache.reserve(5, 30);
    expect(cache.allocatedBytes).toBeGreaterThanOrEqual(2 * LAYERS * 5 * H * 32 * D * 4);
    const more = prefillOutputs([3, 4, 5], [2, 10, 1], 10);
    cache.addRow(more.keys, more.values, 0, 10, 8, 2, 30);
    cache.addRow(more.keys, more.values, 1, 10, 0, 10, 30);
    cache.addRow(more.keys, more.values, 2, 10, 9, 1, 12);
    seqOfRow.push(3, 4, 5);
    expect(cache.slots).toBe(12);
    expectContents(cache, seqOfRow);

    // Removing a middle row moves the last one into it.
    expect(cache.removeRow(1)).toBe(3);
    seqOfRow.splice(1, 1, seqOfRow.pop()!);
    expectContents(cache, seqOfRow);
    for (let step = 0; step < 3; step++) {
      const next = tokenOutputs(cache, seqOfRow);
      cache.appendToken(next.keys, next.values);
      expectContents(cache, seqOfRow);
    }
    expect(cache.slots).toBe(16);

    for (const row of [2, 1, 0]) cache.removeRow(row);
    expect([cache.rows, cache.slots, cache.allocatedBytes]).toEqual([0, 0, 0]);
    expect(cache.peakBytes).toBeGreaterThan(0);
  });

  it('refuses to write past a budget or into rows no one reserved', () => {
    const cache = new KvCache(LAYERS, H, D, 1000, QUANTUM);
    cache.reserve(1, 4);
    const pre = prefillOutputs([1], [4], 4);
    expect(() => cache.addRow(pre.keys, pre.values, 0, 4, 0, 4, 8)).toThrow(/no room reserved/);
    cache.addRow(pre.keys, pre.values, 0, 4, 0, 4, 4);
    const next = tokenOutputs(cache, [1]);
    expect(() => cache.appendToken(next.keys, next.values)).toThrow(/pass its budget/);
    expect(() => cache.reserve(100, 40)).toThrow(RangeError);
  });
});
