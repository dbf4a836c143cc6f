import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { rescoredText } from '../../src/pipeline/hypothesis-choice.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { preparePcm } from '../../src/voice/pcm-conditioning.js';
import { hearBatch, type HeardWindow } from '../../src/voice/whisper-batch.js';
import { WhisperModel } from '../../src/voice/whisper-model.js';
import { WhisperRecognizer } from '../../src/voice/whisper-recognizer.js';
import { ROOT, WHISPER_BASE_DIR } from '../helpers/paths.js';
import { voiceLab, voiceUtterances } from '../helpers/voice-eval.js';

/**
 * What CTranslate2 itself makes of the same model.bin on the same features (test/fixtures/tools: whisper-features.ts,
 * then whisper-reference.py), per utterance: its language probabilities, greedy tokens and beam search's three best
 * (beam 5) with their scores, after the prompt <|startoftranscript|><|lang|><|transcribe|><|notimestamps|>.
 */
const reference = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/whisper-base-reference.json'), 'utf8')) as {
  utterances: Array<{
    voice: string;
    speed: number;
    text: string;
    language: string;
    detected: Array<[string, number]>;
    greedy: number[];
    beam: Array<{ tokens: number[]; score: number }>;
  }>;
};

/**
 * Whisper base's share of held-out voice utterances routed to their intent with the worker's defaults may not fall
 * below this: a regression bound under the 90.3 % measured once (91.7 % at 130 and 88.9 % at 190 words a minute,
 * 2026-12-08), after every choice was made on the dev set. pocketsphinx gives 83.3 % on the same audio.
 */
const WHISPER_ROUTED_AT_LEAST = 0.85;

const decoder = new AudioDecoder({ maxSeconds: 30 });
const spoken = async (u: { voice: string; speed: number; text: string }) =>
  (await decoder.decode(execFileSync('espeak-ng', ['-v', u.voice, '-s', String(u.speed), '--stdout', u.text]))).pcm;

let model: WhisperModel;
let features: Float32Array[];
beforeAll(async () => {
  model = await WhisperModel.load(WHISPER_BASE_DIR, { intraOpThreads: 1 });
  features = [];
  for (const u of reference.utterances) features.push(await model.features(await spoken(u)));
}, 120_000);
afterAll(async () => model?.close());

/**
 * Every reference utterance heard in one batch, in its own language. Each counts as a full window (30 s), so that
 * only the 96 tokens CTranslate2 was given bound it, not the bound a short utterance has in a worker.
 */
const heardAll = (beam: number): Promise<HeardWindow[]> =>
  hearBatch(
    model,
    reference.utterances.map((u, i) => ({ features: features[i], seconds: 30, language: { given: u.language } })),
    { beam, maxTokens: 96 },
  );

describe('Whisper base converted from its CTranslate2 packages, searched by the project', () => {
  it('writes greedily the tokens CTranslate2 writes from the same weights, every utterance heard in one batch', async () => {
    const heard = await heardAll(1);
    for (const [i, u] of reference.utterances.entries())
      expect(heard[i].hypotheses[0].tokens, `${u.voice}: ${u.text}`).toEqual(u.greedy);
  }, 300_000);

  it("finds beam search's three best of CTranslate2 (beam 5), with its scores, though utterances end at different steps", async () => {
    const heard = await heardAll(5);
    for (const [i, u] of reference.utterances.entries()) {
      const ours = heard[i].hypotheses.slice(0, 3);
      expect(
        ours.map((h) => h.tokens),
        `${u.voice}: ${u.text}`,
      ).toEqual(u.beam.map((b) => b.tokens));
      ours.forEach((h, j) => expect(Math.abs(h.score - u.beam[j].score), `${u.text} #${j}`).toBeLessThan(2e-3));
    }
  }, 300_000);

  it("detects the language CTranslate2 detects, with its probability, among all of the model's languages", async () => {
    const among = [...model.vocabulary.languages.keys()];
    const heard = await hearBatch(
      model,
      features.map((f) => ({ features: f, seconds: 30, language: { among } })),
      { beam: 1, maxTokens: 1 },
    );
    for (const [i, u] of reference.utterances.entries()) {
      const [token, p] = u.detected[0];
      expect(`<|${heard[i].language}|>`, u.text).toBe(token);
      expect(Math.abs(heard[i].languageProbability - p), u.text).toBeLessThan(0.01);
    }
  }, 120_000);

  it('hears English from espeak-ng voices it was not tuned on, as a recogniser of the worker, with its n-best list', async () => {
    const whisper = await WhisperRecognizer.load(WHISPER_BASE_DIR, { intraOpThreads: 1 });
    try {
      expect(whisper.languages).toEqual(expect.arrayContaining(['en', 'zh']));
      expect(whisper.detects).toEqual(['en', 'zh']);
      const pcm = await spoken({ voice: 'en-us+f5', speed: 160, text: 'where is my order' });
      const [given, detected] = await Promise.all([whisper.transcribe(pcm, 'en'), whisper.transcribe(pcm)]);
      expect(given.text).toBe('Where is my order?');
      expect(given.hypotheses?.[0]).toEqual({ text: 'Where is my order?', logScore: expect.any(Number) });
      expect(given.hypotheses!.length).toBeGreaterThan(1);
      // The engine's order is the log scores' order, so that rescoring by meaning starts from the engine's best.
      const scores = given.hypotheses!.map((h) => h.logScore);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(detected).toMatchObject({ text: 'Where is my order?', language: 'en' });
      expect(detected.languageProbability).toBeGreaterThan(0.9);
    } finally {
      await whisper.close();
    }
  }, 120_000);

  it(`routes at least ${100 * WHISPER_ROUTED_AT_LEAST} % of the held-out voice utterances to the right intent, heard as a worker hears them`, async () => {
    const { voice } = loadConfig({});
    const lab = await voiceLab(1, 1);
    const whisper = await WhisperRecognizer.load(WHISPER_BASE_DIR, { intraOpThreads: 2 });
    try {
      const utterances = voiceUtterances('held-out');
      const rescore = {
        confidences: (t: readonly string[]) => lab.planner.intentConfidences(t),
        weight: voice.whisperMeaningWeight,
      };
      const routed: number[] = [];
      for (const speed of [130, 190]) {
        const pcms = await Promise.all(utterances.map((u) => spoken({ voice: 'en-us+f5', speed, text: u.text })));
        // All at once, as a batch's voice messages reach Whisper; the noise floor and rescoring as the worker has them.
        const heard = await Promise.all(
          pcms.map(async (pcm) =>
            rescoredText(
              await whisper.transcribe(preparePcm(pcm, { noiseFloorDb: voice.noiseFloorDb }), 'en'),
              rescore,
            ),
          ),
        );
        let right = 0;
        for (const [i, u] of utterances.entries()) if ((await lab.route(heard[i].text)) === u.intent) right++;
        routed.push(right / utterances.length);
      }
      console.info(
        `Whisper base, held out, en-us+f5 at 130 and 190 words a minute: ${routed.map((r) => `${(100 * r).toFixed(1)} %`).join(', ')}`,
      );
      expect((routed[0] + routed[1]) / 2).toBeGreaterThanOrEqual(WHISPER_ROUTED_AT_LEAST);
    } finally {
      await whisper.close();
      await lab.close();
    }
  }, 300_000);
});
