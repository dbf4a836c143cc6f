import { describe, expect, it } from 'vitest';
import {
  RepetitionPenaltyProcessor,
  TemperatureWarper,
  TopKWarper,
  TopPWarper,
  softmax,
} from '../../src/generation/logits-processors.js';
import { GreedySampler, SeededSampler } from '../../src/generation/samplers.js';
import {
  EosTokenCriterion,
  MaxNewTokensCriterion,
  StopStringCriterion,
} from '../../src/generation/stopping-criteria.js';

const f = (...v: number[]) => Float32Array.from(v);

describe('logits processors', () => {
  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const l = f(2, -2, 1);
    new RepetitionPenaltyProcessor(2).apply(l, [0, 1, 0]);
    expect([...l]).toEqual([1, -4, 1]);
  });
  it('temperature scales logits', () => {
    const l = f(2, 4);
    new TemperatureWarper(2).apply(l);
    expect([...l]).toEqual([1, 2]);
  });
  it('top-k keeps the k best', () => {
    const l = f(1, 5, 3, 4);
    new TopKWarper(2).apply(l);
    expect([...l]).toEqual([-Infinity, 5, -Infinity, 4]);
  });
  it('top-p keeps the smallest nucleus reaching p', () => {
    const l = f(Math.log(0.5), Math.log(0.3), Math.log(0.2));
    new TopPWarper(0.7).apply(l);
    expect(l[2]).toBe(-Infinity);
    expect(l[1]).toBeCloseTo(Math.log(0.3));
    const all = f(0, 0);
    new TopPWarper(1).apply(all);
    expect([...all]).toEqual([0, 0]);
  });
  it('softmax ignores removed tokens', () => {
    expect([...softmax(f(0, -Infinity, 0))]).toEqual([0.5, 0, 0.5]);
  });
});

describe('samplers', () => {
  it('greedy picks the highest logit, lowest id on ties', () => {
    expect(new GreedySampler().sample(f(1, 3, 3, 2))).toBe(1);
  });
  it('seeded sampling is reproducible and follows the distribution', () => {
    const logits = f(Math.log(0.7), Math.log(0.2), Math.log(0.1));
    const draw = (seed: number) =>
      Array.from(
        { length: 2000 },
        (
          (s) => () =>
            s.sample(logits)
        )(new SeededSampler(seed)),
      );
    const a = draw(5);
    expect(a).toEqual(draw(5));
    expect(a).not.toEqual(draw(6));
    expect(a.filter((t) => t === 0).length / a.length).toBeCloseTo(0.7, 1);
    expect(new SeededSampler(1).sample(f(-Infinity, 0, -Infinity))).toBe(1);
  });
});

describe('stopping criteria', () => {
  it('max new tokens', () => {
    expect(new MaxNewTokensCriterion(2).isDone({ tokens: [1], text: '' })).toBe(false);
    expect(new MaxNewTokensCriterion(2).isDone({ tokens: [1, 2], text: '' })).toBe(true);
  });
  it('eos', () => {
    const c = new EosTokenCriterion([50256]);
    expect(c.isDone({ tokens: [50256, 3], text: '' })).toBe(false);
    expect(c.isDone({ tokens: [3, 50256], text: '' })).toBe(true);
  });
  it('stop strings: detect, cut before the earliest, hold back a possible prefix', () => {
    const c = new StopStringCriterion(['\nUser:', 'END']);
    expect(c.isDone({ tokens: [], text: 'hello\nUse' })).toBe(false);
    expect(c.isDone({ tokens: [], text: 'hello\nUser: hi' })).toBe(true);
    expect(c.cut('a END b\nUser:')).toBe('a ');
    expect(c.cut('plain')).toBe('plain');
    expect(c.pendingSuffix('hello\nUs')).toBe(3);
    expect(c.pendingSuffix('hello EN')).toBe(2);
    expect(c.pendingSuffix('hello')).toBe(0);
  });
});

describe('GenerationSequence', () => {
  const scoresFor = (token: number) => {
    const s = new Float32Array(10);
    s[token] = 5;
    return s;
  };
  const decode = (ids: readonly number[]) => ids.map((i) => String.fromCharCode(96 + i)).join('');

  it('ends at EOS without returning it', async () => {
    const { GenerationSequence } = await import('../../src/generation/generation-sequence.js');
    const seq = new GenerationSequence([1], { maxNewTokens: 10, eosTokenIds: [9], decode });
    expect(seq.next(scoresFor(1))).toBe(1);
    expect(seq.next(scoresFor(2))).toBe(2);
    expect(seq.next(scoresFor(9))).toBeNull();
    await expect(seq.result).resolves.toEqual({
      text: 'ab',
      promptTokens: 1,
      generatedTokens: 2,
      finishReason: 'stop',
    });
  });

  it('does not end at EOS before minNewTokens: the next most likely token is taken', async () => {
    const { GenerationSequence } = await import('../../src/generation/generation-sequence.js');
    const seq = new GenerationSequence([1], { maxNewTokens: 10, minNewTokens: 2, eosTokenIds: [9], decode });
    const eosFirst = () => {
      const s = scoresFor(9);
      s[3] = 4;
      return s;
    };
    expect(seq.next(eosFirst())).toBe(3);
    expect(seq.next(eosFirst())).toBe(3);
    expect(seq.next(eosFirst())).toBeNull();
    await expect(seq.result).resolves.toMatchObject({ text: 'cc', generatedTokens: 2, finishReason: 'stop' });
  });

  it('ends at the token that completes a stop string and streams nothing from it on', async () => {
    const { GenerationSequence } = await import('../../src/generation/generation-sequence.js');
    const deltas: string[] = [];
    const seq = new GenerationSequence([1], {
      maxNewTokens: 10,
      eosTokenIds: [9],
      decode,
      stop: ['cd'],
      onText: (d) => deltas.push(d),
    });
    for (const t of [1, 2, 3]) expect(seq.next(scoresFor(t))).toBe(t);
    expect(deltas.join('')).toBe('ab');
    expect(seq.next(scoresFor(4))).toBeNull();
    await expect(seq.result).resolves.toMatchObject({ text: 'ab', generatedTokens: 4 });
    expect(deltas.join('')).toBe('ab');
  });
});
