import { describe, expect, it } from 'vitest';
import { RecognizerPool } from '../../src/voice/recognizer-pool.js';
import type { SpeechRecognizer, Transcript } from '../../src/voice/speech-recognizer.js';

/** A decoder whose utterances finish when the test says so: it records what it was given. */
function heldDecoder(name: string) {
  const pending: Array<(t: Transcript) => void> = [];
  const decoder = {
    engine: 'test',
    languages: ['en'],
    heard: [] as number[],
    domain: [] as string[][],
    closed: false,
    transcribe(pcm: Int16Array) {
      decoder.heard.push(pcm[0]);
      return new Promise<Transcript>((resolve) => pending.push(resolve));
    },
    async useDomainText(sentences: readonly string[]) {
      decoder.domain.push([...sentences]);
    },
    async close() {
      decoder.closed = true;
    },
    finishOne() {
      pending.shift()!({ text: name });
    },
  } satisfies SpeechRecognizer & Record<string, unknown>;
  return decoder;
}

const utterance = (n: number) => Int16Array.of(n);

describe('RecognizerPool', () => {
  it('gives each utterance to the decoder with the fewest waiting, and a freed decoder the next one', async () => {
    const [a, b] = [heldDecoder('a'), heldDecoder('b')];
    const pool = new RecognizerPool([a, b]);
    const first = [1, 2, 3, 4].map((n) => pool.transcribe(utterance(n), 'en'));
    // Two each, alternating: the least loaded, the first of a tie.
    expect([a.heard, b.heard]).toEqual([
      [1, 3],
      [2, 4],
    ]);
    b.finishOne();
    expect(await first[1]).toEqual({ text: 'b' });
    // b has one waiting, a two: the next goes to b.
    const fifth = pool.transcribe(utterance(5), 'en');
    expect(b.heard).toEqual([2, 4, 5]);
    a.finishOne();
    a.finishOne();
    b.finishOne();
    b.finishOne();
    expect(await Promise.all([first[0], first[2], first[3], fifth])).toEqual([
      { text: 'a' },
      { text: 'a' },
      { text: 'b' },
      { text: 'b' },
    ]);
  });

  it('gives the domain text to every decoder and closes them all; refuses to be empty', async () => {
    const [a, b] = [heldDecoder('a'), heldDecoder('b')];
    const pool = new RecognizerPool([a, b]);
    expect(pool.size).toBe(2);
    await pool.useDomainText(['where is my order']);
    expect([a.domain, b.domain]).toEqual([[['where is my order']], [['where is my order']]]);
    await pool.close();
    expect([a.closed, b.closed]).toEqual([true, true]);
    expect(() => new RecognizerPool([])).toThrow(/at least one decoder/);
  });
});
