import { execFileSync } from 'node:child_process';
import { loadConfig } from '../../src/config/config.js';
import { rescoredText, type Rescoring } from '../../src/pipeline/hypothesis-choice.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { sentenceWords } from '../../src/voice/domain-language-model.js';
import { preparePcm } from '../../src/voice/pcm-conditioning.js';
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
 * each voice at `speed`, clean and with white noise at 10 dB SNR, heard as a worker hears (the noise floor, the
 * engine, rescoring by meaning through {@link rescoredText}) and routed by the worker's recogniser of intents. Both
 * are told the language (`en`), as `audio.language` tells a worker. A voice's utterances reach Whisper all at once,
 * as a batch's voice messages do (it hears them in batches of `AVA_ASR_WHISPER_BATCH`); the RTF is the wall time
 * over the audio's length.
 */
export async function whisperAgainstPocketsphinx(
  lab: VoiceLab,
  whisperDir: string,
  utterances: readonly Utterance[],
  voices: readonly string[],
  speed: number,
  defaults: VoiceSteps,
): Promise<RecognizerRow[]> {
  const { voice: settings } = loadConfig({});
  const whisper = await WhisperRecognizer.load(whisperDir, {
    intraOpThreads: 2,
    beam: settings.whisperBeam,
    batch: settings.whisperBatch,
  });
  const decoder = new AudioDecoder({ maxSeconds: 60 });
  const confidences = (texts: readonly string[]) => lab.planner.intentConfidences(texts);
  const rescore: Record<RecognizerRow['recognizer'], Rescoring> = {
    'whisper base': { confidences, weight: settings.whisperMeaningWeight },
    pocketsphinx: { confidences, weight: defaults.meaningWeight },
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
        ['pocketsphinx', lab.pool],
      ] as const) {
        const t = performance.now();
        const heard = await Promise.all(
          audio.map(async ({ pcm }) =>
            rescoredText(await recognizer.transcribe(preparePcm(pcm, defaults), 'en'), rescore[name]),
          ),
        );
        const seconds = (performance.now() - t) / 1000;
        rows.push(
          await scored(
            lab,
            name,
            voice,
            audio,
            heard.map((h) => h.text),
            seconds,
          ),
        );
      }
    }
  } finally {
    await whisper.close();
  }
  report(rows, whisperDir, speed);
  return rows;
}

/** One recogniser's row on one voice's audio. */
async function scored(
  lab: VoiceLab,
  recognizer: RecognizerRow['recognizer'],
  voice: string,
  audio: ReadonlyArray<{ u: Utterance; noisy: boolean; pcm: Int16Array }>,
  heard: readonly string[],
  seconds: number,
): Promise<RecognizerRow> {
  let [errors, words] = [0, 0];
  const right = { clean: 0, noisy: 0 };
  for (const [i, { u, noisy }] of audio.entries()) {
    errors += wordErrors(sentenceWords(u.text), sentenceWords(heard[i]));
    words += sentenceWords(u.text).length;
    if ((await lab.route(heard[i])) === u.intent) right[noisy ? 'noisy' : 'clean']++;
  }
  const n = audio.length / 2;
  return {
    recognizer,
    voice,
    routed: (right.clean + right.noisy) / (2 * n),
    clean: right.clean / n,
    noisy: right.noisy / n,
    wer: errors / words,
    rtf: seconds / (audio.reduce((s, a) => s + a.pcm.length, 0) / 16_000),
  };
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
