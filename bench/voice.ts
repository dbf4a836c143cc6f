/**
 * `npm run bench:voice`: how well voice messages are heard, over a voice set the recogniser was not tuned on. Each
 * utterance (test/fixtures/voice-utterances-dev.jsonl to tune on, voice-utterances.jsonl held out; none a sentence of
 * the domain text) is spoken by espeak-ng in each voice at each speed, clean and with white noise at 10 dB SNR,
 * decoded as a worker decodes uploads and recognised by pocketsphinx with the domain model and its n-best list.
 * The rescoring weight is chosen on the dev set; the held-out set is then reported per voice with each step
 * (conditioning, rescoring by meaning) off and on, against the bound a perfect transcript reaches. Also measures the
 * decoder pool: held-out utterances per second with 1 and with 2 decoders, and the blended language model (domain
 * weights `BENCH_BLEND` on dev, the best held out). `BENCH_PARTS` (domain,blend,pool) picks the parts. Writes
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
import { conditionPcm } from '../src/voice/pcm-conditioning.js';
import { machine, writeResult } from './lib/bench-utils.js';

const VOICES = (process.env.BENCH_VOICES ?? 'en-us+f5,en-us+m3,en-us+klatt2,en-gb+f2,en-gb-scotland,en-029').split(',');
const SPEEDS = (process.env.BENCH_SPEEDS ?? '140,180').split(',').map(Number);
/** The blended language model's domain weights tried on dev (`AVA_ASR_LANGUAGE_MODEL=blend`). */
const BLEND_WEIGHTS = (process.env.BENCH_BLEND ?? '0.5,0.9').split(',').filter(Boolean).map(Number);
/** Which parts run: the domain model's steps, the blended model, the decoder pool. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'domain,blend,pool').split(','));
const WEIGHTS = [0.5, 1, 2, 4, 8];
const settings: VoiceSetting[] = VOICES.flatMap((voice) =>
  SPEEDS.flatMap((speed) => [false, true].map((noisy) => ({ voice, speed, noisy }))),
);
const started = Date.now();
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const mean = (rows: VoiceRow[], key: 'wer' | 'routed' | 'rtf') => rows.reduce((s, r) => s + r[key], 0) / rows.length;
const lab = await voiceLab(2);

/** The domain model's steps: the rescoring weight tuned on dev, then the held-out set with each step off and on. */
async function domainSteps() {
  // Tune the weight on the dev set, with conditioning as the better of off and on.
  const dev = voiceUtterances('dev');
  const devSteps: VoiceSteps[] = [false, true].flatMap((condition) =>
    [0, ...WEIGHTS].map((meaningWeight) => ({ condition, meaningWeight })),
  );
  const devRows = await evaluateVoice(lab, dev, settings, devSteps);
  const devTable = devSteps.map((s) => {
    const rows = devRows.filter((r) => r.condition === s.condition && r.meaningWeight === s.meaningWeight);
    return { ...s, routed: mean(rows, 'routed'), wer: mean(rows, 'wer') };
  });
  console.log(`\ndev set: ${dev.length} utterances × ${settings.length} settings`);
  console.table(devTable.map((r) => ({ ...r, routed: pct(r.routed), wer: pct(r.wer) })));
  const best = devTable
    .filter((r) => r.meaningWeight > 0)
    .sort((a, b) => b.routed - a.routed || a.meaningWeight - b.meaningWeight)[0];
  const weight = best.meaningWeight;

  // The held-out set, each step off and on.
  const steps: VoiceSteps[] = [
    { condition: false, meaningWeight: 0 },
    { condition: true, meaningWeight: 0 },
    { condition: false, meaningWeight: weight },
    { condition: true, meaningWeight: weight },
  ];
  const rows = await evaluateVoice(lab, heldOut, settings, steps);
  const stepName = (s: VoiceSteps) =>
    `${s.condition ? 'cond' : '-'} / ${s.meaningWeight > 0 ? `rescore ${s.meaningWeight}` : '-'}`;
  const perVoice = VOICES.flatMap((voice) =>
    steps.map((s) => {
      const mine = rows.filter(
        (r) => r.voice === voice && r.condition === s.condition && r.meaningWeight === s.meaningWeight,
      );
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
    `\nheld-out: ${heldOut.length} utterances; rescoring weight ${weight} (chosen on dev); typed text routes ${pct(typed)}`,
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

  return { dev: devTable, weight, typed, perVoice, summary, rows };
}

/**
 * The blended language model (the domain model interpolated with pocketsphinx's general one): each domain weight on
 * dev, then the best one held out, both with the defaults' other steps (no conditioning, rescoring at weight 1).
 */
async function blendedModel() {
  const steps: VoiceSteps[] = [{ condition: false, meaningWeight: 1 }];
  const dev: Array<{ blendWeight: number; routed: number; wer: number; rtf: number }> = [];
  for (const blendWeight of BLEND_WEIGHTS) {
    const blendLab = await voiceLab(2, 10, { languageModel: 'blend', blendWeight });
    const rows = await evaluateVoice(blendLab, voiceUtterances('dev'), settings, steps);
    await blendLab.close();
    dev.push({ blendWeight, routed: mean(rows, 'routed'), wer: mean(rows, 'wer'), rtf: mean(rows, 'rtf') });
  }
  console.log('\nblended language model, dev set (no conditioning, rescoring at weight 1):');
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
    heldOut.map(
      async (u) =>
        conditionPcm(
          (await decoder.decode(execFileSync('espeak-ng', ['-v', 'en-us+m3', '-s', '160', '--stdout', u.text]))).pcm,
        ).pcm,
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

const heldOut = voiceUtterances('held-out');
const domain = PARTS.has('domain') ? await domainSteps() : undefined;
const blend = PARTS.has('blend') && BLEND_WEIGHTS.length > 0 ? await blendedModel() : undefined;
const pool = PARTS.has('pool') ? await decoderPool() : undefined;
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
});
console.log(`results: ${file}`);
