import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { SentenceEncoder } from '../../src/embedding/sentence-encoder.js';
import { IntentClassifier } from '../../src/intent/intent-classifier.js';
import { loadIntentCatalog } from '../../src/intent/intent-file.js';
import { embedExamples } from '../../src/intent/semantic-examples.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { domainSentences } from '../../src/pipeline/domain-sentences.js';
import type { KnowledgeEntry } from '../../src/storage/knowledge-entry.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { sentenceWords } from '../../src/voice/domain-language-model.js';
import { PocketsphinxRecognizer } from '../../src/voice/pocketsphinx-recognizer.js';
import { ROOT } from './paths.js';

/** One held-out utterance: what is said and the intent it should reach. */
export interface Utterance {
  text: string;
  intent: string;
}

/** How one voice at one speed was heard. */
export interface VoiceRow {
  voice: string;
  speed: number;
  utterances: number;
  words: number;
  /** Word error rate with pocketsphinx's general model, and with the domain model (general as fallback). */
  werGeneral: number;
  werDomain: number;
  /** Utterances heard word for word. */
  exactGeneral: number;
  exactDomain: number;
  /** Share routed to the right intent from the domain-model transcript, and from the text itself (the ceiling). */
  routed: number;
  routedFromText: number;
  /** Seconds of recognition per second of audio. */
  rtfGeneral: number;
  rtfDomain: number;
  audioSeconds: number;
  misses: Array<{ said: string; heard: string; intent: string; routedTo: string }>;
}

/** The held-out utterances (test/fixtures/voice-utterances.jsonl). */
export function heldOutUtterances(): Utterance[] {
  return readFileSync(path.join(ROOT, 'test/fixtures/voice-utterances.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Utterance);
}

/** The sample deployment's domain text: config/intents.yaml and kb/shop-faq.en.md, as a worker builds it. */
export async function sampleDomain() {
  const catalog = await loadIntentCatalog(path.join(ROOT, 'config/intents.yaml'));
  const file = path.join(ROOT, 'kb/shop-faq.en.md');
  const entries = parseKnowledgeFile('shop-faq.en.md', readFileSync(file, 'utf8')).map((e): KnowledgeEntry => ({
    ...e,
    updatedAt: new Date(),
  }));
  return { catalog, sentences: domainSentences(catalog, entries) };
}

/** Word-level edit distance. */
export function wordErrors(ref: readonly string[], hyp: readonly string[]): number {
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const row = [i];
    for (let j = 1; j <= hyp.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ref[i - 1] === hyp[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[hyp.length];
}

/**
 * Speaks each utterance with espeak-ng in every voice and speed, decodes it as a worker does, transcribes it with
 * the general (unless `general: false`; its figures are then meaningless) and the domain model, and routes the domain transcript with the worker's intent recogniser (words,
 * and meaning when the sentence encoder is there).
 */
export async function evaluateVoice(
  utterances: readonly Utterance[],
  voices: readonly string[],
  speeds: readonly number[],
  opts: { general?: boolean } = {},
): Promise<VoiceRow[]> {
  const withGeneral = opts.general ?? true;
  const { catalog, sentences } = await sampleDomain();
  const defaults = loadConfig({}, {});
  const encoderDir = path.join(ROOT, 'models', defaults.semantic.encoder);
  const encoder = existsSync(encoderDir) ? await SentenceEncoder.load(encoderDir, { intraOpThreads: 1 }) : undefined;
  const semantic = encoder && {
    index: await embedExamples(catalog.intents, encoder),
    floor: defaults.semantic.floor,
    temperature: defaults.semantic.temperature,
    decisive: defaults.semantic.decisive,
  };
  const classifier = new IntentClassifier(catalog.intents, {
    threshold: defaults.intents.threshold,
    ...(semantic ? { semantic } : {}),
  });
  const route = async (text: string) => classifier.recognize(text, encoder && (await encoder.embed([text]))[0]).name;
  const general = await PocketsphinxRecognizer.load({ languageModel: 'general' });
  const domain = await PocketsphinxRecognizer.load();
  await domain.useDomainText(sentences);
  const decoder = new AudioDecoder({ maxSeconds: 60 });
  const rows: VoiceRow[] = [];
  try {
    for (const voice of voices) {
      for (const speed of speeds) {
        const row: VoiceRow = {
          voice,
          speed,
          utterances: utterances.length,
          words: 0,
          werGeneral: 0,
          werDomain: 0,
          exactGeneral: 0,
          exactDomain: 0,
          routed: 0,
          routedFromText: 0,
          rtfGeneral: 0,
          rtfDomain: 0,
          audioSeconds: 0,
          misses: [],
        };
        let [errGeneral, errDomain, msGeneral, msDomain] = [0, 0, 0, 0];
        for (const u of utterances) {
          const audio = await decoder.decode(
            execFileSync('espeak-ng', ['-v', voice, '-s', String(speed), '--stdout', u.text]),
          );
          row.audioSeconds += audio.seconds;
          const ref = sentenceWords(u.text);
          row.words += ref.length;
          let t = performance.now();
          const g = withGeneral ? await general.transcribe(audio.pcm, 'en') : { text: '' };
          msGeneral += performance.now() - t;
          t = performance.now();
          const d = await domain.transcribe(audio.pcm, 'en');
          msDomain += performance.now() - t;
          const eg = wordErrors(ref, sentenceWords(g.text));
          const ed = wordErrors(ref, sentenceWords(d.text));
          errGeneral += eg;
          errDomain += ed;
          if (eg === 0) row.exactGeneral++;
          if (ed === 0) row.exactDomain++;
          const routedTo = d.text ? await route(d.text) : 'unknown';
          if (routedTo === u.intent) row.routed++;
          else row.misses.push({ said: u.text, heard: d.text, intent: u.intent, routedTo });
          if ((await route(u.text)) === u.intent) row.routedFromText++;
        }
        Object.assign(row, {
          werGeneral: errGeneral / row.words,
          werDomain: errDomain / row.words,
          routed: row.routed / utterances.length,
          routedFromText: row.routedFromText / utterances.length,
          rtfGeneral: msGeneral / 1000 / row.audioSeconds,
          rtfDomain: msDomain / 1000 / row.audioSeconds,
        });
        rows.push(row);
      }
    }
  } finally {
    await Promise.all([general.close(), domain.close(), encoder?.close()]);
  }
  return rows;
}
