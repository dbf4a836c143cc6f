/**
 * `npm run bench:voice`: how well voice messages are heard, over voice sets the recogniser was not tuned on. Each
 * utterance (voice-utterances-dev.jsonl to tune on, voice-utterances.jsonl held out) is spoken by espeak-ng in each
 * voice at each speed, clean and with white noise at 10 dB SNR, decoded as a worker decodes uploads and heard by
 * pocketsphinx (domain model, n-best list). The noise floor's level (`BENCH_FLOORS`) and the rescoring weight are
 * chosen on dev; held out, each step is reported per voice on its own and together. Also: the decoder pool and the
 * worker's transcription stage with 1 and 2 decoders, the blended language model (`BENCH_BLEND`), and Whisper base
 * against pocketsphinx (`BENCH_WHISPER`). `BENCH_PARTS` (domain,blend,pool,stage,whisper) picks the parts. Writes
 * bench/results/voice-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import {
  evaluateVoice,
  routedFromText,
  voiceLab,
  voiceUtterances,
  type VoiceRow,
  type VoiceSetting,
  type VoiceSteps,
} from '../test/helpers/voice-eval.js';
import { AudioDecoder } from '../src/voice/audio-decoder.js';
import { loadConfig } from '../src/config/config.js';
import { preparePcm } from '../src/voice/pcm-conditioning.js';
import type { VoiceMessage } from '../src/contract/message-contract.js';
import { MessageTranscriber } from '../src/pipeline/message-transcriber.js';
import type { VoiceJob } from '../src/pipeline/batch-stages.js';
import { Database } from '../src/storage/database.js';
import { UploadRepository } from '../src/storage/upload-repository.js';
import { cleanup, silentLog } from '../test/helpers/services.js';
import { machine, writeResult } from './lib/bench-utils.js';
import { whisperAgainstPocketsphinx } from './lib/whisper-voice-run.js';

const VOICES = (process.env.BENCH_VOICES ?? 'en-us+f5,en-us+m3,en-us+klatt2,en-gb+f2,en-gb-scotland,en-029').split(',');
const SPEEDS = (process.env.BENCH_SPEEDS ?? '140,180').split(',').map(Number);
/** The blended language model's domain weights tried on dev (a bench profile; it is not a setting). */
const BLEND_WEIGHTS = (process.env.BENCH_BLEND ?? '0.5,0.9').split(',').filter(Boolean).map(Number);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'domain,blend,pool,stage,whisper').split(','));
const WHISPER_DIR = process.env.BENCH_WHISPER ?? 'models/whisper'; // where the demo and the test setup convert it
const WEIGHTS = [0.5, 1, 2, 4, 8];
/** Noise floor levels tried on dev, in dB below the speech (`off`: none): least noise first, so ties go to less. */
const FLOORS = (process.env.BENCH_FLOORS ?? 'off,40,35,30,25')
  .split(',')
  .map((f) => (f === 'off' ? undefined : Number(f)));
/** The steps a worker takes with the default configuration. */
const DEFAULTS: VoiceSteps = (({ noiseFloorDb, meaningWeight }) => ({
  condition: false,
  noiseFloorDb,
  meaningWeight,
}))(loadConfig({}).voice);
const stepName = (s: VoiceSteps) =>
  [
    s.condition ? 'cond' : '-',
    s.noiseFloorDb !== undefined ? `floor ${s.noiseFloorDb}` : '-',
    s.meaningWeight > 0 ? `rescore ${s.meaningWeight}` : '-',
  ].join(' / ');
const settings: VoiceSetting[] = VOICES.flatMap((voice) =>
  SPEEDS.flatMap((speed) => [false, true].map((noisy) => ({ voice, speed, noisy }))),
);
const started = Date.now();
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const mean = (rows: VoiceRow[], key: 'wer' | 'routed' | 'rtf') => rows.reduce((s, r) => s + r[key], 0) / rows.length;
const lab = await voiceLab(2);

/** One row per steps: the mean over `rows` of those steps' right intent and WER. */
function tabulate(rows: VoiceRow[], steps: readonly VoiceSteps[]) {
  return steps.map((s) => {
    const mine = rows.filter((r) => stepName(r) === stepName(s));
    return { steps: stepName(s), ...s, routed: mean(mine, 'routed'), wer: mean(mine, 'wer') };
  });
}

/** The best of `table` by right intent; ties go to the first. */
const bestOf = <T extends { routed: number }>(table: T[]): T => table.reduce((b, r) => (r.routed > b.routed ? r : b));

/**
 * The domain model's steps. On dev: the noise floor's level (without rescoring), then the rescoring weight with that
 * floor, then conditioning with both. Held out: each step on its own, the defaults, and all three.
 */
async function domainSteps() {
  const dev = voiceUtterances('dev');
  const devSteps: VoiceSteps[] = FLOORS.flatMap((noiseFloorDb) =>
    [0, ...WEIGHTS].map((meaningWeight) => ({ condition: false, noiseFloorDb, meaningWeight })),
  );
  const devTable = tabulate(await evaluateVoice(lab, dev, settings, devSteps), devSteps);
  const floor = bestOf(devTable.filter((r) => r.meaningWeight === 0)).noiseFloorDb;
  const weight = bestOf(devTable.filter((r) => r.noiseFloorDb === floor && r.meaningWeight > 0)).meaningWeight;
  const conditionedSteps: VoiceSteps[] = [0, weight].map((w) => ({
    condition: true,
    noiseFloorDb: floor,
    meaningWeight: w,
  }));
  devTable.push(...tabulate(await evaluateVoice(lab, dev, settings, conditionedSteps), conditionedSteps));
  console.log(`\ndev set: ${dev.length} utterances × ${settings.length} settings`);
  console.table(devTable.map((r) => ({ steps: r.steps, routed: pct(r.routed), wer: pct(r.wer) })));

  // The held-out set, each step off and on.
  const none = { condition: false, noiseFloorDb: undefined, meaningWeight: 0 };
  const steps: VoiceSteps[] = [
    none,
    { ...none, noiseFloorDb: floor },
    { ...none, meaningWeight: weight },
    { ...none, condition: true },
    { ...none, noiseFloorDb: floor, meaningWeight: weight },
    { condition: true, noiseFloorDb: floor, meaningWeight: weight },
  ];
  const rows = await evaluateVoice(lab, heldOut, settings, steps);
  const perVoice = VOICES.flatMap((voice) =>
    steps.map((s) => {
      const mine = rows.filter((r) => r.voice === voice && stepName(r) === stepName(s));
      const clean = mine.filter((r) => !r.noisy);
      const noisy = mine.filter((r) => r.noisy);
      return {
        voice,
        steps: stepName(s),
        routed: mean(mine, 'routed'),
        clean: mean(clean, 'routed'),
        noisy: mean(noisy, 'routed'),
        wer: mean(mine, 'wer'),
        werNoisy: mean(noisy, 'wer'),
        rtf: mean(mine, 'rtf'),
      };
    }),
  );
  const typed = await routedFromText(lab, heldOut);
  console.log(
    `\nheld-out: ${heldOut.length} utterances; noise floor ${floor === undefined ? 'off' : `${floor} dB below the speech`} and rescoring weight ${weight} (chosen on dev); typed text routes ${pct(typed)}`,
  );
  console.table(
    perVoice.map((r) => ({
      voice: r.voice,
      steps: r.steps,
      'right intent': pct(r.routed),
      'clean / noisy': `${pct(r.clean)} / ${pct(r.noisy)}`,
      WER: pct(r.wer),
      'WER noisy': pct(r.werNoisy),
      RTF: r.rtf.toFixed(3),
    })),
  );
  const summary = steps.map((s) => {
    const byVoice = perVoice.filter((r) => r.steps === stepName(s));
    return {
      steps: stepName(s),
      meanRouted: mean(byVoice as unknown as VoiceRow[], 'routed'),
      worstVoice: Math.min(...byVoice.map((r) => r.routed)),
    };
  });
  console.table(
    summary.map((r) => ({ steps: r.steps, 'mean right intent': pct(r.meanRouted), 'worst voice': pct(r.worstVoice) })),
  );

  return { dev: devTable, floor, weight, typed, perVoice, summary, rows };
}

/**
 * The blended language model (the domain model interpolated with pocketsphinx's general one): each domain weight on
 * dev, then the best one held out, both with the default steps.
 */
async function blendedModel() {
  const steps: VoiceSteps[] = [DEFAULTS];
  const dev: Array<{ blendWeight: number; routed: number; wer: number; rtf: number }> = [];
  for (const blendWeight of BLEND_WEIGHTS) {
    const blendLab = await voiceLab(2, 10, { languageModel: 'blend', blendWeight });
    const rows = await evaluateVoice(blendLab, voiceUtterances('dev'), settings, steps);
    await blendLab.close();
    dev.push({ blendWeight, routed: mean(rows, 'routed'), wer: mean(rows, 'wer'), rtf: mean(rows, 'rtf') });
  }
  console.log(`\nblended language model, dev set (${stepName(DEFAULTS)}):`);
  console.table(dev.map((r) => ({ ...r, routed: pct(r.routed), wer: pct(r.wer), rtf: r.rtf.toFixed(3) })));
  const best = [...dev].sort((x, y) => y.routed - x.routed)[0];
  const blendLab = await voiceLab(2, 10, { languageModel: 'blend', blendWeight: best.blendWeight });
  const rows = await evaluateVoice(blendLab, heldOut, settings, steps);
  await blendLab.close();
  const perVoice = VOICES.map((voice) => {
    const mine = rows.filter((r) => r.voice === voice);
    return { voice, routed: mean(mine, 'routed'), wer: mean(mine, 'wer'), rtf: mean(mine, 'rtf') };
  });
  console.log(`blended, held out at domain weight ${best.blendWeight}:`);
  console.table(perVoice.map((r) => ({ ...r, routed: pct(r.routed), wer: pct(r.wer), rtf: r.rtf.toFixed(3) })));
  const meanRouted = perVoice.reduce((t, r) => t + r.routed, 0) / perVoice.length;
  console.log(`mean right intent ${pct(meanRouted)}, worst voice ${pct(Math.min(...perVoice.map((r) => r.routed)))}`);
  return { dev, blendWeight: best.blendWeight, perVoice, meanRouted, rows };
}

/** The decoder pool: the held-out utterances of one setting transcribed with 1 and with 2 decoders at once. */
async function decoderPool() {
  const decoder = new AudioDecoder({ maxSeconds: 60 });
  const audio = await Promise.all(
    heldOut.map(async (u) =>
      preparePcm(
        (await decoder.decode(execFileSync('espeak-ng', ['-v', 'en-us+m3', '-s', '160', '--stdout', u.text]))).pcm,
        DEFAULTS,
      ),
    ),
  );
  const pool: Record<string, number> = {};
  for (const n of [1, 2]) {
    const t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: n }, async () => {
        while (next < audio.length) await lab.pool.transcribe(audio[next++], 'en');
      }),
    );
    pool[`${n} decoder${n > 1 ? 's' : ''}`] = audio.length / ((performance.now() - t) / 1000);
  }
  console.log(
    `\ndecoder pool, utterances/s: ${JSON.stringify(pool)}; 2/1 = ${(pool['2 decoders'] / pool['1 decoder']).toFixed(2)}`,
  );
  return pool;
}

/**
 * The transcription stage as a worker runs it, with 1 and with 2 decoders at once: the held-out utterances (`en-us+m3`,
 * 160 words a minute) stored as uploads in the database (GridFS), then read back, decoded by ffmpeg, prepared,
 * recognised and rescored by the worker's `MessageTranscriber`, one batch of 36 voice messages.
 */
async function transcriptionStage() {
  execFileSync('bash', ['scripts/services.sh', 'up'], { stdio: 'inherit' });
  const config = loadConfig({ AVA_DB_NAME: `bench_voice_${Date.now()}` });
  const database = await Database.connect(config.storage.url, config.storage.dbName);
  try {
    const uploads = new UploadRepository(database);
    const jobs: VoiceJob[] = [];
    for (const [i, u] of heldOut.entries()) {
      const key = `voice-${i}`;
      const wav = execFileSync('espeak-ng', ['-v', 'en-us+m3', '-s', '160', '--stdout', u.text]);
      const fileId = await uploads.put(wav, { contentType: 'audio/wav', messageId: key, tenant: 'default' });
      const message = {
        v: 1,
        messageId: key,
        conversationId: 'bench',
        userId: 'bench',
        audio: { fileId, language: 'en' },
      };
      jobs.push({
        job: {
          id: key,
          data: message,
          timestamp: Date.now(),
          attemptsMade: 0,
          stalledCounter: 0,
          queueQualifiedName: '',
        },
        key,
        digest: key,
        message: { ...message, tenant: 'default' } as VoiceMessage,
      });
    }
    const stage: Record<string, number> = {};
    for (const parallel of [1, 2]) {
      const transcriber = new MessageTranscriber({
        uploads,
        decoder: new AudioDecoder({ maxSeconds: 60 }),
        recognizers: [lab.pool],
        log: silentLog,
        preparation: DEFAULTS,
        rescore: {
          confidences: (texts) => lab.planner.intentConfidences(texts),
          weights: { pocketsphinx: DEFAULTS.meaningWeight },
        },
        parallel,
      });
      const t = performance.now();
      const { heard, failed } = await transcriber.transcribeAll(jobs);
      if (failed.length > 0 || heard.length !== jobs.length) throw new Error(`${failed.length} voice messages failed`);
      stage[`${parallel} decoder${parallel > 1 ? 's' : ''}`] = jobs.length / ((performance.now() - t) / 1000);
    }
    console.log(
      `\ntranscription stage, voice messages/s: ${JSON.stringify(stage)}; 2/1 = ${(stage['2 decoders'] / stage['1 decoder']).toFixed(2)}`,
    );
    return stage;
  } finally {
    await database.close();
    await cleanup(config);
  }
}

const heldOut = voiceUtterances('held-out');
const domain = PARTS.has('domain') ? await domainSteps() : undefined;
const blend = PARTS.has('blend') && BLEND_WEIGHTS.length > 0 ? await blendedModel() : undefined;
const pool = PARTS.has('pool') ? await decoderPool() : undefined;
const stage = PARTS.has('stage') ? await transcriptionStage() : undefined;
const whisper = PARTS.has('whisper')
  ? await whisperAgainstPocketsphinx(lab, WHISPER_DIR, heldOut, VOICES, 160, DEFAULTS)
  : undefined;
await lab.close();

const file = await writeResult('voice', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  versions: {
    espeakNg: execFileSync('espeak-ng', ['--version']).toString().trim(),
    pocketsphinx: 'libpocketsphinx3 (Debian)',
  },
  seconds: Math.round((Date.now() - started) / 1000),
  domain,
  blend,
  pool,
  stage,
  whisper,
});
console.log(`results: ${file}`);
