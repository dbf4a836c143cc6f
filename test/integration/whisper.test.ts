import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forgeWhisper } from '../../src/models/whisper-forge.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { hearBatch, maxTokensFor } from '../../src/voice/whisper-batch.js';
import { WhisperModel } from '../../src/voice/whisper-model.js';
import { WhisperRecognizer } from '../../src/voice/whisper-recognizer.js';
import { startApiWorld } from '../helpers/api-world.js';

let dir: string;
let model: string;
const said = () => execFileSync('espeak-ng', ['-v', 'en-us+f5', '--stdout', 'where is my order']);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ava-whisper-'));
  model = (await forgeWhisper({ preset: 'test', outDir: path.join(dir, 'whisper') })).outDir;
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('Whisper run by the project, on a model the project forges', () => {
  it('loads and transcribes (noise, from seeded weights), the same way every time', async () => {
    const whisper = await WhisperRecognizer.load(model, { intraOpThreads: 1, maxNewTokens: 32 });
    try {
      expect(whisper.languages).toEqual(['en']);
      const audio = await new AudioDecoder({ maxSeconds: 60 }).decode(said());
      const first = await whisper.transcribe(audio.pcm, 'en');
      expect(first.text.length).toBeGreaterThan(0);
      expect(await whisper.transcribe(audio.pcm, 'en')).toEqual(first);
    } finally {
      await whisper.close();
    }
  });

  it('decodes with its cache exactly as without: step-by-step logits equal one pass over the whole prefix', async () => {
    const whisper = await WhisperModel.load(model, { intraOpThreads: 1 });
    try {
      const audio = await new AudioDecoder({ maxSeconds: 60 }).decode(said());
      const hidden = await whisper.encode([await whisper.features(audio.pcm)]);
      const tokens = [50257, 50263, 1374, 318, 616];
      let stepped = await whisper.start(hidden, tokens.slice(0, 1), 1);
      for (let t = 1; t <= tokens.length; t++) {
        const whole = await whisper.start(hidden, tokens.slice(0, t), 1);
        let worst = 0;
        whole.logits[0].forEach((v, i) => (worst = Math.max(worst, Math.abs(v - stepped.logits[0][i]))));
        expect(worst, `token ${t}`).toBeLessThan(1e-4);
        if (t < tokens.length) stepped = await whisper.step([[tokens[t]]], stepped.cache);
      }
    } finally {
      await whisper.close();
    }
  });

  it('hears windows in one batch token for token as it hears each alone, beams and all, as long as their audio allows', async () => {
    const whisper = await WhisperModel.load(model, { intraOpThreads: 1 });
    try {
      const decode = new AudioDecoder({ maxSeconds: 60 });
      const texts = ['where is my order', 'thank you', 'can I pay by card please'];
      const windows = [];
      for (const text of texts) {
        const wav = execFileSync('espeak-ng', ['-v', 'en-us+f5', '--stdout', text]);
        const { pcm, seconds } = await decode.decode(wav);
        windows.push({ features: await whisper.features(pcm), seconds, language: { given: 'en' } });
      }
      const search = { beam: 3, maxTokens: 64 };
      const together = await hearBatch(whisper, windows, search);
      for (const [i, w] of windows.entries()) {
        const [alone] = await hearBatch(whisper, [w], search);
        expect(
          together[i].hypotheses.map((h) => h.tokens),
          texts[i],
        ).toEqual(alone.hypotheses.map((h) => h.tokens));
        together[i].hypotheses.forEach((h, j) => expect(h.score).toBeCloseTo(alone.hypotheses[j].score, 4));
        // Seeded weights rarely end a text: the audio's length bounds each hypothesis, well under the search's 64.
        const bound = maxTokensFor(windows[i].seconds);
        expect(bound).toBeLessThan(64);
        for (const h of together[i].hypotheses) expect(h.tokens.length).toBeLessThanOrEqual(bound);
        expect(Math.max(...together[i].hypotheses.map((h) => h.tokens.length))).toBe(bound);
      }
    } finally {
      await whisper.close();
    }
  });

  it('hears voice messages in a worker when AVA_ASR=whisper, and refuses languages the model does not know', async () => {
    const token = 'whisper-token-0123456789abcdef';
    const world = await startApiWorld('whisper', {
      AVA_ASR: 'whisper',
      AVA_ASR_WHISPER_MODEL: model,
      AVA_API_TOKENS: `w:${token}:enqueue+read:default`,
    });
    try {
      const auth = { authorization: `Bearer ${token}` };
      const audio = said().toString('base64');
      for (const [id, language] of [
        ['w-en', 'en'],
        ['w-zh', 'zh'],
      ]) {
        expect(
          (
            await world.api.inject({
              method: 'POST',
              url: '/v1/messages/audio',
              headers: auth,
              payload: { messageId: id, conversationId: 'c', userId: 'u', language, audio },
            })
          ).statusCode,
        ).toBe(202);
      }
      const en = (await world.api.inject({ url: '/v1/messages/w-en?wait=25000', headers: auth })).json();
      expect(en).toMatchObject({
        status: 'replied',
        transcript: { engine: 'whisper', language: 'en', text: expect.any(String) },
      });
      expect(en.transcript.confidence).toBeUndefined();
      const zh = (await world.api.inject({ url: '/v1/messages/w-zh?wait=25000', headers: auth })).json();
      expect(zh).toMatchObject({
        status: 'failed',
        error: { code: 'ERR_AUDIO_LANGUAGE', message: expect.stringContaining("'zh'") },
      });
    } finally {
      await world.close();
    }
  }, 60_000);
});
