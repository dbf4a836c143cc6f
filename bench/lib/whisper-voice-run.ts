import { execFileSync } from 'node:child_process';
import { chooseHypothesis } from '../../src/pipeline/hypothesis-choice.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { sentenceWords } from '../../src/voice/domain-language-model.js';
import { preparePcm } from '../../src/voice/pcm-conditioning.js';
import type { SpeechRecognizer } from '../../src/voice/speech-recognizer.js';
import { WhisperRecognizer } from '../../src/voice/whisper-recognizer.js';
import {
  withNoise,
  wordErrors,
  type Utterance,
  type VoiceLab,
  type VoiceSteps,
} from '../../test/helpers/voice-eval.js';

/** One recogniser on one voice: right intent (clean and noisy together), word errors, real-time factor. */
export interface RecognizerRow {
  recognizer: 'whisper base' | 'pocketsphinx';
  voice: string;
  routed: number;
  clean: number;
  noisy: number;
  wer: number;
  rtf: number;
}

/**
 * Whisper base against pocketsphinx with the worker's defaults, on the same audio: each held-out utterance spoken by
 * each voice at `speed`, clean and with white noise at 10 dB SNR, heard by both, routed by the worker's recogniser of
 * intents. Whisper is told the language (`en`), as a voice message's `audio.language` tells a worker.
 */
export async function whisperAgainstPocketsphinx(
  lab: VoiceLab,
  whisperDir: string,
  utterances: readonly Utterance[],
  voices: readonly string[],
  speed: number,
  defaults: VoiceSteps,
): Promise<RecognizerRow[]> {
  const whisper = await WhisperRecognizer.load(whisperDir, { intraOpThreads: 2 });
  const decoder = new AudioDecoder({ maxSeconds: 60 });
  const pocketsphinx: SpeechRecognizer = {
    engine: 'pocketsphinx',
    languages: ['en'],
    transcribe: async (pcm, language) => {
      const heard = await lab.pool.transcribe(preparePcm(pcm, defaults), language);
      const hypotheses = heard.hypotheses ?? [{ text: heard.text, logScore: 0 }];
      const confidences =
        hypotheses.length > 1 ? await lab.planner.intentConfidences(hypotheses.map((h) => h.text)) : [];
      return { text: hypotheses[chooseHypothesis(hypotheses, confidences, defaults.meaningWeight)].text };
    },
    close: async () => undefined,
  };
  const rows: RecognizerRow[] = [];
  try {
    for (const voice of voices) {
      const audio = await Promise.all(
        utterances.flatMap((u, k) =>
          [false, true].map(async (noisy) => {
            const wav = execFileSync('espeak-ng', ['-v', voice, '-s', String(speed), '--stdout', u.text]);
            const pcm = (await decoder.decode(wav)).pcm;
            return { u, noisy, pcm: noisy ? withNoise(pcm, 10, k + 1) : pcm };
          }),
        ),
      );
      for (const [name, recognizer] of [
        ['whisper base', whisper],
        ['pocketsphinx', pocketsphinx],
      ] as const) {
        let [errors, words, ms, seconds] = [0, 0, 0, 0];
        const right = { clean: 0, noisy: 0 };
        for (const { u, noisy, pcm } of audio) {
          const t = performance.now();
          const heard = (await recognizer.transcribe(pcm, 'en')).text;
          ms += performance.now() - t;
          seconds += pcm.length / 16_000;
          errors += wordErrors(sentenceWords(u.text), sentenceWords(heard));
          words += sentenceWords(u.text).length;
          if ((await lab.route(heard)) === u.intent) right[noisy ? 'noisy' : 'clean']++;
        }
        const n = utterances.length;
        rows.push({
          recognizer: name,
          voice,
          routed: (right.clean + right.noisy) / (2 * n),
          clean: right.clean / n,
          noisy: right.noisy / n,
          wer: errors / words,
          rtf: ms / 1000 / seconds,
        });
      }
    }
  } finally {
    await whisper.close();
  }
  report(rows, whisperDir, speed);
  return rows;
}

function report(rows: readonly RecognizerRow[], whisperDir: string, speed: number): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  console.log(
    `\nWhisper base (${whisperDir}) against pocketsphinx with the defaults, held out, ${speed} words a minute:`,
  );
  console.table(
    rows.map((r) => ({
      ...r,
      routed: pct(r.routed),
      clean: pct(r.clean),
      noisy: pct(r.noisy),
      wer: pct(r.wer),
      rtf: r.rtf.toFixed(3),
    })),
  );
  for (const name of ['whisper base', 'pocketsphinx'] as const) {
    const mine = rows.filter((r) => r.recognizer === name);
    const mean = (key: 'routed' | 'wer' | 'rtf') => mine.reduce((s, r) => s + r[key], 0) / mine.length;
    console.log(
      `${name}: mean right intent ${pct(mean('routed'))}, worst voice ${pct(Math.min(...mine.map((r) => r.routed)))}, mean WER ${pct(mean('wer'))}, RTF ${mean('rtf').toFixed(3)}`,
    );
  }
}
