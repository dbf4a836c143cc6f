import { describe, expect, it } from 'vitest';
import {
  ContinuousBatcher,
  type ScheduledSequence,
  type SequenceBackend,
} from '../../src/scheduler/continuous-batcher.js';

/**
 * A backend that records what the scheduler asks of it: which handles each step advanced. Scores put all weight on
 * token 7, so sequences run until their own length limit.
 */
class RecordingBackend implements SequenceBackend {
  readonly live = new Set<number>();
  readonly steps: number[][] = [];
  readonly prefills: number[][] = [];
  footprint(budgets: readonly number[]) {
    return budgets.length * Math.max(0, ...budgets);
  }
  async prefill(entries: ReadonlyArray<{ handle: number }>) {
    this.prefills.push(entries.map((e) => e.handle));
    for (const e of entries) this.live.add(e.handle);
    return entries.map(() => Float32Array.of(0, 0, 0, 0, 0, 0, 0, 1));
  }
  async decode(tokens: ReadonlyMap<number, number>) {
    expect([...tokens.keys()].sort()).toEqual([...this.live].sort());
    this.steps.push([...tokens.keys()]);
    return new Map([...tokens.keys()].map((h) => [h, Float32Array.of(0, 0, 0, 0, 0, 0, 0, 1)] as const));
  }
  release(handle: number) {
    this.live.delete(handle);
  }
}

/** A sequence that stops after `length` tokens and records when it finished. */
function seq(
  name: string,
  length: number,
  budget = 10,
  log: string[] = [],
): ScheduledSequence & { done: Promise<void> } {
  let n = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    promptTokens: [1, 2],
    tokenBudget: budget,
    done,
    next() {
      if (++n >= length) {
        log.push(name);
        resolve();
        return null;
      }
      return 7;
    },
    fail: (err) => {
      throw err;
    },
  };
}

describe('ContinuousBatcher', () => {
  it('lets a finished sequence leave at once and a waiting one join at the next step', async () => {
    const backend = new RecordingBackend();
    const batcher = new ContinuousBatcher(backend, { maxBatchSize: 2, maxCachedTokens: 100 });
    const order: string[] = [];
    const a = seq('short', 2, 10, order);
    const b = seq('long', 6, 10, order);
    const c = seq('late', 2, 10, order);
    batcher.submit(a);
    batcher.submit(b);
    batcher.submit(c);
    expect(batcher.hasCapacity()).toBe(false);
    await Promise.all([a.done, b.done, c.done]);
    expect(order).toEqual(['short', 'late', 'long']);
    // c was prefilled as soon as a left, while b was still running; b never waited for anyone.
    expect(backend.prefills).toEqual([[1, 2], [3]]);
    expect(Math.max(...backend.steps.map((s) => s.length))).toBe(2);
    expect(batcher.load).toEqual({ running: 0, waiting: 0, cachedTokens: 0 });
    expect(batcher.hasCapacity()).toBe(true);
  });

  it('keeps the cached-token budget: requests beyond it wait', async () => {
    const backend = new RecordingBackend();
    const batcher = new ContinuousBatcher(backend, { maxBatchSize: 8, maxCachedTokens: 25 });
    const seqs = [seq('a', 3, 10), seq('b', 3, 10), seq('c', 3, 10)];
    for (const s of seqs) batcher.submit(s);
    await Promise.all(seqs.map((s) => s.done));
    expect(backend.prefills).toEqual([[1, 2], [3]]);
  });

  it('refuses a request larger than the whole budget', async () => {
    const batcher = new ContinuousBatcher(new RecordingBackend(), { maxBatchSize: 8, maxCachedTokens: 5 });
    let error: unknown;
    batcher.submit({ promptTokens: [1], tokenBudget: 6, next: () => null, fail: (e) => (error = e) });
    expect(String(error)).toMatch(/needs 6 cached tokens/);
  });

  it('fails every running sequence when a step fails, and keeps serving afterwards', async () => {
    const backend = new RecordingBackend();
    let broken = true;
    const original = backend.decode.bind(backend);
    backend.decode = async (t) => {
      if (broken) throw new Error('device lost');
      return original(t);
    };
    const batcher = new ContinuousBatcher(backend, { maxBatchSize: 4, maxCachedTokens: 100 });
    const failures: unknown[] = [];
    batcher.submit({ promptTokens: [1], tokenBudget: 5, next: () => 7, fail: (e) => failures.push(e) });
    await new Promise((r) => setTimeout(r, 10));
    expect(String(failures[0])).toMatch(/device lost/);
    expect(batcher.load).toEqual({ running: 0, waiting: 0, cachedTokens: 0 });
    broken = false;
    const ok = seq('ok', 2);
    batcher.submit(ok);
    await ok.done;
  });

  it('reports a failure of its own loop once, fails every sequence with it and refuses new ones', async () => {
    const backend = new RecordingBackend();
    // Steps that take a moment, as a model's do, so that timers run between them.
    const step = backend.decode.bind(backend);
    backend.decode = async (t) => {
      await new Promise((r) => setTimeout(r, 1));
      return step(t);
    };
    const batcher = new ContinuousBatcher(backend, { maxBatchSize: 1, maxCachedTokens: 100 });
    const fatal: Error[] = [];
    batcher.onFatal((err) => fatal.push(err));
    const failures: string[] = [];
    const tracked = (name: string, length = 1_000) => {
      let n = 0;
      return {
        promptTokens: [1],
        tokenBudget: 5,
        next: () => (++n >= length ? null : 7),
        fail: (e: unknown) => failures.push(`${name}: ${String(e)}`),
      };
    };
    // A bug outside any request's own steps: releasing a finished sequence's cache row throws.
    backend.release = () => {
      throw new TypeError('row of undefined');
    };
    batcher.submit(tracked('ending', 3));
    batcher.submit(tracked('waiting'));
    // Waits for the event, not for a time.
    await expect.poll(() => fatal.map(String)).toEqual(['TypeError: row of undefined']);
    // The sequence that had ended keeps its result; the one still waiting fails with the loop's error.
    expect(failures).toEqual(['waiting: TypeError: row of undefined']);
    batcher.submit(tracked('later'));
    expect(failures.at(-1)).toMatch(/^later: Error: the scheduler stopped after a failure of its own/);
    expect(fatal).toHaveLength(1);
  });
});
