/**
 * `npm run bench:voice`: how well voice messages are heard. Each held-out utterance (test/fixtures/voice-utterances.jsonl,
 * none of them a sentence of the domain text) is spoken by espeak-ng in each voice at each speed, decoded as a worker
 * decodes uploads, and transcribed by pocketsphinx with its general model (the baseline) and with the domain model
 * built from config/intents.yaml and kb/shop-faq.en.md. Prints word error rates, exact transcripts, the share routed to
 * the right intent (and the share the typed text reaches, its ceiling) and seconds of recognition per second of audio;
 * reports domain/general as ratios; writes bench/results/voice-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { evaluateVoice, heldOutUtterances } from '../test/helpers/voice-eval.js';
import { machine, writeResult } from './lib/bench-utils.js';

const VOICES = (process.env.BENCH_VOICES ?? 'en-us+f5,en-us+klatt2,en-us').split(',');
const SPEEDS = (process.env.BENCH_SPEEDS ?? '130,190').split(',').map(Number);

const utterances = heldOutUtterances();
const started = Date.now();
const rows = await evaluateVoice(utterances, VOICES, SPEEDS);
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
console.log(`\n${utterances.length} held-out utterances per row; WER = word errors / ${rows[0]?.words ?? 0} words\n`);
console.table(
  rows.map((r) => ({
    voice: r.voice,
    'words/min': r.speed,
    'WER general': pct(r.werGeneral),
    'WER domain': pct(r.werDomain),
    'domain/general': (r.werDomain / r.werGeneral).toFixed(2),
    'exact g/d': `${r.exactGeneral}/${r.exactDomain}`,
    'right intent': pct(r.routed),
    'typed text': pct(r.routedFromText),
    'RTF general': r.rtfGeneral.toFixed(3),
    'RTF domain': r.rtfDomain.toFixed(3),
  })),
);
const file = await writeResult('voice', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  versions: {
    espeakNg: execFileSync('espeak-ng', ['--version']).toString().trim(),
    pocketsphinx: 'libpocketsphinx3 (Debian)',
  },
  seconds: Math.round((Date.now() - started) / 1000),
  rows,
});
console.log(`results: ${file}`);
