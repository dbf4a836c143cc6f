import { describe, expect, it } from 'vitest';
import { SemanticIndex } from '../../src/embedding/semantic-index.js';
import { OFF_TOPIC, semanticVerdict, type SemanticExamples } from '../../src/intent/semantic-evidence.js';

/** Unit vectors in a plane, at an angle whose cosine to the x axis is `c` (so a query on the x axis sees `c`). */
const at = (c: number) => new Float32Array([c, Math.sqrt(1 - c * c)]);
const query = new Float32Array([1, 0]);
const examples = (entries: Array<[string, number]>, margin = 0): SemanticExamples => ({
  index: new SemanticIndex(entries.map(([item, c]) => ({ item, vector: at(c) }))),
  floor: 0.35,
  margin,
  temperature: 0.03,
  decisive: 0.55,
});

describe('semanticVerdict', () => {
  it('supports words alone only past the floor and nearer than every off-topic example by the margin', () => {
    const verdict = semanticVerdict(
      examples(
        [
          ['shipping', 0.5],
          ['returns', 0.3],
          ['store', 0.45],
          [OFF_TOPIC, 0.42],
        ],
        0.05,
      ),
      query,
    );
    expect(verdict.supports('shipping')).toBe(true);
    expect(verdict.supports('returns')).toBe(false); // below the floor
    expect(verdict.supports('store')).toBe(false); // past the floor, but within the margin of off-topic
    expect([...verdict.confidences.keys()].sort()).toEqual(['shipping', OFF_TOPIC]);
  });

  it('supports a pattern always, and a keyword unless an off-topic example is nearer', () => {
    const verdict = semanticVerdict(
      examples([
        ['thanks', 0.2],
        ['greeting', 0.6],
        [OFF_TOPIC, 0.5],
      ]),
      query,
    );
    expect(verdict.supports('thanks', 'pattern')).toBe(true);
    expect(verdict.supports('thanks', 'keyword')).toBe(false);
    expect(verdict.supports('greeting', 'keyword')).toBe(true);
    // An intent with no examples in the message's language: the meaning cannot judge it, so its words stand.
    expect(verdict.supports('absent', 'keyword')).toBe(true);
    expect(verdict.supports('absent')).toBe(true);
  });

  it('gives off-topic the lead, and no intent a confidence, for a message nearest the off-topic examples', () => {
    const verdict = semanticVerdict(
      examples([
        ['shipping', 0.38],
        [OFF_TOPIC, 0.7],
      ]),
      query,
    );
    expect(verdict.confidences.get(OFF_TOPIC)).toBeGreaterThan(0.99);
    expect(verdict.confidences.has('shipping')).toBe(false);
  });
});
