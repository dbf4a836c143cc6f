import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forgeWhisper, WHISPER_PRESETS } from '../../src/models/whisper-forge.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
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

describe('Whisper through transformers.js, on a model the project forges', () => {
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

  it('decodes with its cache exactly as without: step-by-step logits equal one full pass', async () => {
    const d = WHISPER_PRESETS.test;
    const D = d.dModel / d.nHeads;
    const session = await ort.InferenceSession.create(path.join(model, 'onnx', 'decoder_model_merged.onnx'));
    const hidden = new ort.Tensor(
      'float32',
      Float32Array.from({ length: d.nAudioCtx * d.dModel }, (_, i) => Math.sin(i * 0.37)),
      [1, d.nAudioCtx, d.dModel],
    );
    const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, d.nHeads, 0, D]);
    const feeds = (ids: number[], past: Record<string, ort.Tensor>) => {
      const f: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
        encoder_hidden_states: hidden,
        use_cache_branch: new ort.Tensor('bool', [Object.keys(past).length > 0], [1]),
      };
      for (let i = 0; i < d.decoderLayers; i++)
        for (const kind of ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'])
          f[`past_key_values.${i}.${kind}`] = past[`past_key_values.${i}.${kind}`] ?? empty();
      return f;
    };
    const tokens = [50257, 50263, 1374, 318, 616];
    const full = await session.run(feeds(tokens, {}));
    const V = d.vocabSize;
    let past: Record<string, ort.Tensor> = {};
    for (let t = 0; t < tokens.length; t++) {
      const out = await session.run(feeds([tokens[t]], past));
      const step = out.logits.data as Float32Array;
      const whole = (full.logits.data as Float32Array).subarray(t * V, (t + 1) * V);
      let worst = 0;
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(step[v] - whole[v]));
      expect(worst, `token ${t}`).toBeLessThan(1e-4);
      past = Object.fromEntries(
        Object.entries(out)
          .filter(([k]) => k.startsWith('present'))
          .map(([k, v]) => [k.replace('present', 'past_key_values'), v]),
      );
    }
    await session.release();
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
