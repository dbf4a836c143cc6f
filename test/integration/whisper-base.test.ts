import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AutoProcessor,
  WhisperForConditionalGeneration,
  type PreTrainedModel,
  type Processor,
  type Tensor,
} from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineTransformers } from '../../src/models/transformers-env.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { WhisperRecognizer } from '../../src/voice/whisper-recognizer.js';
import { ROOT, WHISPER_BASE_DIR } from '../helpers/paths.js';

/**
 * What CTranslate2 itself makes of the same model.bin on the same features (test/fixtures/tools: whisper-features.ts,
 * then whisper-reference.py): the greedy tokens after the prompt, per utterance.
 */
const reference = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/whisper-base-reference.json'), 'utf8')) as {
  utterances: Array<{
    voice: string;
    speed: number;
    text: string;
    language: string;
    prompt: number[];
    greedy: number[];
  }>;
};

const END_OF_TEXT = 50257;
const decoder = new AudioDecoder({ maxSeconds: 30 });
const spoken = async (u: { voice: string; speed: number; text: string }) =>
  (await decoder.decode(execFileSync('espeak-ng', ['-v', u.voice, '-s', String(u.speed), '--stdout', u.text]))).pcm;

let processor: Processor;
let model: PreTrainedModel;
beforeAll(async () => {
  offlineTransformers();
  processor = await AutoProcessor.from_pretrained(WHISPER_BASE_DIR, { local_files_only: true });
  model = await WhisperForConditionalGeneration.from_pretrained(WHISPER_BASE_DIR, {
    local_files_only: true,
    dtype: 'fp32',
    session_options: { intraOpNumThreads: 1 },
  });
}, 120_000);
afterAll(async () => model?.dispose());

describe('Whisper base converted from its CTranslate2 packages into the project graphs', () => {
  it('writes, greedily, the tokens CTranslate2 writes from the same weights, on every reference utterance', async () => {
    for (const u of reference.utterances) {
      const pcm = await spoken(u);
      const { input_features } = await processor(Float32Array.from(pcm, (s) => s / 32768));
      const out = (await model.generate({
        input_features,
        language: u.language,
        task: 'transcribe',
        max_new_tokens: 96,
      } as never)) as Tensor;
      const tokens = Array.from(out.data as BigInt64Array, Number);
      // CTranslate2's sequences leave the prompt and <|endoftext|> out (a sequence cut at the bound has none).
      const written = tokens.slice(u.prompt.length, tokens.at(-1) === END_OF_TEXT ? -1 : undefined);
      expect(tokens.slice(0, u.prompt.length), u.text).toEqual(u.prompt);
      expect(written, `${u.voice}: ${u.text}`).toEqual(u.greedy);
    }
  }, 300_000);

  it('hears English from espeak-ng voices it was not tuned on, as a recogniser of the worker', async () => {
    const whisper = await WhisperRecognizer.load(WHISPER_BASE_DIR, { intraOpThreads: 1 });
    try {
      expect(whisper.languages).toEqual(expect.arrayContaining(['en', 'zh']));
      const heard = await whisper.transcribe(
        await spoken({ voice: 'en-us+f5', speed: 160, text: 'where is my order' }),
        'en',
      );
      expect(heard.text).toBe('Where is my order?');
    } finally {
      await whisper.close();
    }
  }, 120_000);
});
