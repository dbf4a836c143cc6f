import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { synthesizerFor } from '../../src/voice/speech-synthesizer.js';
import { WhisperRecognizer } from '../../src/voice/whisper-recognizer.js';
import { PIPER_VOICE_FILE, ROOT, WHISPER_BASE_DIR } from '../helpers/paths.js';
import { wordErrors } from '../helpers/voice-eval.js';
import { comparableWords as words } from '../helpers/comparable-words.js';

/** 30 replies as the assistant writes them: the English knowledge base's first sentences, templates, and others. */
const replies = (await readFile(path.join(ROOT, 'test/fixtures/spoken-replies.jsonl'), 'utf8'))
  .trim()
  .split('\n')
  .map((l) => (JSON.parse(l) as { text: string }).text);
/**
 * The round trip's word error rate (on words normalised as Whisper's evaluation normalises them) may not pass this.
 * Measured 10.1 % over 385 words (2026-12-08, beam 5): the goal of 5 % is not reached. Most errors are
 * Chinese names and `yuan` in an American voice (Alipay, Huabei, Pudong, Shanghai; "yuan" heard as "you and"), the
 * shop's own names (AVA as "Abba", mapleandpine) and "15" as "50"; a broken voice or recogniser gives near 100 %.
 */
const MAX_WER = 0.15;

let whisper: WhisperRecognizer;
beforeAll(async () => {
  whisper = await WhisperRecognizer.load(WHISPER_BASE_DIR, { intraOpThreads: 2 });
}, 120_000);
afterAll(async () => whisper?.close());

describe('English replies spoken by the Piper voice', () => {
  const config = loadConfig({}, { AVA_TTS_PIPER_VOICE: PIPER_VOICE_FILE });
  const synthesizer = synthesizerFor(config);
  const decoder = new AudioDecoder({ maxSeconds: 60 });

  it(`are heard back by Whisper base with a word error rate of at most ${100 * MAX_WER} % (30 replies)`, async () => {
    const pcms: Int16Array[] = [];
    for (const text of replies) {
      const speech = await synthesizer.synthesize(text);
      expect(speech.voice).toBe('piper:en_US-joe-medium');
      expect(speech.wav.readUInt32LE(24)).toBe(22_050);
      pcms.push((await decoder.decode(speech.wav)).pcm);
    }
    // All at once, as a batch's voice messages reach Whisper.
    const heard = await Promise.all(pcms.map(async (pcm) => (await whisper.transcribe(pcm, 'en')).text));
    let errors = 0;
    let total = 0;
    const misses: string[] = [];
    replies.forEach((text, i) => {
      const e = wordErrors(words(text), words(heard[i]));
      if (e > 0) misses.push(`${text} → ${heard[i]}`);
      errors += e;
      total += words(text).length;
    });
    console.info(
      `Piper → Whisper base: WER ${((100 * errors) / total).toFixed(1)} % over ${total} words\n${misses.join('\n')}`,
    );
    expect(errors / total, misses.join('\n')).toBeLessThanOrEqual(MAX_WER);
  }, 600_000);

  it('leaves Mandarin to espeak-ng, and English too where no Piper voice is installed', async () => {
    expect((await synthesizer.synthesize('您的订单已发货。')).voice).toBe('cmn');
    const off = synthesizerFor(loadConfig({}, { AVA_TTS_PIPER_VOICE: 'off' }));
    expect((await off.synthesize('Your order has shipped.')).voice).toBe('en-us');
    const missing = synthesizerFor(loadConfig({}, { AVA_TTS_PIPER_VOICE: '/nowhere/voice.onnx' }));
    expect(missing.voiceFor('Your order has shipped.')).toBe('en-us');
  });
});
