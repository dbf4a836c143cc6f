import { expect, it } from 'vitest';
import { SpeechRepository } from '../../src/storage/speech-repository.js';
import { AudioTranscoder } from '../../src/voice/audio-transcoder.js';
import { SpeechCache } from '../../src/voice/speech-cache.js';
import { SpeechSynthesizer, type Speech } from '../../src/voice/speech-synthesizer.js';
import { isolatedNames, sharedStores, testConfig } from '../helpers/services.js';

const stores = sharedStores(testConfig(isolatedNames('speechcache')));

/** The real espeak-ng synthesiser, observed: how many times it ran, and how many ran at once at most. */
class WatchedSynthesizer extends SpeechSynthesizer {
  runs = 0;
  running = 0;
  mostAtOnce = 0;

  override async synthesize(text: string): Promise<Speech> {
    this.runs++;
    this.mostAtOnce = Math.max(this.mostAtOnce, ++this.running);
    try {
      return await super.synthesize(text);
    } finally {
      this.running--;
    }
  }
}

it('speaks a reply once however many ask at once, and runs at most two syntheses at a time', async () => {
  const synthesizer = new WatchedSynthesizer();
  const cache = new SpeechCache(new SpeechRepository(stores.db), synthesizer, new AudioTranscoder(), 2);
  const text = 'Your order has shipped and will arrive on Friday.';
  const same = await Promise.all(Array.from({ length: 10 }, () => cache.get('same-reply', text, 'wav')));
  expect(synthesizer.runs).toBe(1);
  expect(new Set(same.map((s) => s.audio.toString('base64'))).size).toBe(1);
  expect((await cache.get('same-reply', text, 'wav')).cached).toBe(true);

  const many = await Promise.all(
    Array.from({ length: 6 }, (_, i) => cache.get(`reply-${i}`, `Reply number ${i} is ready.`, 'wav')),
  );
  expect(many.every((s) => s.audio.toString('ascii', 0, 4) === 'RIFF')).toBe(true);
  expect(synthesizer.runs).toBe(7);
  expect(synthesizer.mostAtOnce).toBe(2);
});
