import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import { loadConfig } from '../../src/config/config.js';
import { ReplyPlanner } from '../../src/conversation/reply-planner.js';
import { SentenceEncoder } from '../../src/embedding/sentence-encoder.js';
import { IntentClassifier } from '../../src/intent/intent-classifier.js';
import { loadIntentCatalog } from '../../src/intent/intent-file.js';
import { languageOf, type Language } from '../../src/language/search-terms.js';
import { classifierSemantics, plannerSemantics } from '../../src/conversation/planner-semantics.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { chooseHypothesis } from '../../src/pipeline/hypothesis-choice.js';
import { domainSentences } from '../../src/pipeline/domain-sentences.js';
import type { KnowledgeEntry } from '../../src/storage/knowledge-entry.js';
import { AudioDecoder } from '../../src/voice/audio-decoder.js';
import { sentenceWords } from '../../src/voice/domain-language-model.js';
import { mixNoise, preparePcm, speechRms, type PcmPreparation } from '../../src/voice/pcm-conditioning.js';
import { PocketsphinxRecognizer, type LanguageModelChoice } from '../../src/voice/pocketsphinx-recognizer.js';
import { RecognizerPool } from '../../src/voice/recognizer-pool.js';
import { ROOT } from './paths.js';
import { silentLog } from './services.js';

/** One utterance: what is said and the intent it should reach. */
export interface Utterance {
  text: string;
  intent: string;
}

/** How an utterance is spoken: an espeak-ng voice, words a minute, and whether white noise is mixed in at 10 dB SNR. */
export interface VoiceSetting {
  voice: string;
  speed: number;
  noisy: boolean;
}

/**
 * Which optional steps recognition takes: level and silence conditioning, the noise floor (dB below the speech; undefined: none),
 * and rescoring by meaning (weight; 0: off).
 */
export interface VoiceSteps {
  condition: boolean;
  noiseFloorDb: number | undefined;
  meaningWeight: number;
}

/** How one setting was heard with one set of steps. */
export interface VoiceRow extends VoiceSetting, VoiceSteps {
  utterances: number;
  words: number;
  /** Word errors / words; utterances heard word for word; share routed to the right intent. */
  wer: number;
  exact: number;
  routed: number;
  /** Seconds of recognition per second of audio (n-best list included). */
  rtf: number;
  misses: Array<{ said: string; heard: string; intent: string; routedTo: string }>;
}

/** Held-out utterances (test/fixtures/voice-utterances.jsonl), or the dev set that weights are tuned on. */
export function voiceUtterances(set: 'held-out' | 'dev' = 'held-out'): Utterance[] {
  const file = set === 'dev' ? 'voice-utterances-dev.jsonl' : 'voice-utterances.jsonl';
  return readFileSync(path.join(ROOT, 'test/fixtures', file), 'utf8')
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

/** `pcm` with seeded white noise mixed in at `snrDb` below the speech's RMS. */
export function withNoise(pcm: Int16Array, snrDb: number, seed: number): Int16Array {
  return mixNoise(pcm, speechRms(pcm) / 10 ** (snrDb / 20), seed);
}

/** What recognises and routes: pocketsphinx decoders with the domain model, and the worker's reply planner. */
export async function voiceLab(
  decoders = 2,
  nbest = 10,
  languageModel: { languageModel?: LanguageModelChoice; blendWeight?: number } = {},
) {
  const { catalog, sentences } = await sampleDomain();
  const defaults = loadConfig({}, {});
  // The encoders as a worker has them, in float32.
  const encoders: Partial<Record<Language, SentenceEncoder>> = {};
  for (const [language, name] of [
    ['en', defaults.semantic.encoder],
    ['zh', defaults.semantic.zhEncoder],
  ] as const) {
    const dir = path.join(ROOT, 'models', name);
    if (existsSync(dir)) encoders[language] = await SentenceEncoder.load(dir, { intraOpThreads: 1 });
  }
  const semantics = await plannerSemantics(
    catalog,
    Object.fromEntries(Object.entries(encoders).map(([l, e]) => [l, { embedder: e, encoder: e }])),
    {
      floor: { en: defaults.semantic.floor, zh: defaults.semantic.zhFloor },
      margin: { en: defaults.semantic.margin, zh: defaults.semantic.zhMargin },
      temperature: defaults.semantic.temperature,
      decisive: defaults.semantic.decisive,
    },
    silentLog,
  );
  const planner = new ReplyPlanner(
    catalog,
    { intentThreshold: defaults.intents.threshold, kbTopK: 0, kbPassageChars: 600, handlerTimeoutMs: 1_000 },
    undefined,
    undefined,
    semantics,
  );
  const classifier = new IntentClassifier(catalog.intents, {
    threshold: defaults.intents.threshold,
    semantic: classifierSemantics(semantics),
  });
  /** The intent a worker recognises for a text: by its words, and its meaning when its language's encoder is there. */
  const route = async (text: string) => {
    if (!text) return 'unknown';
    const language = languageOf(text);
    const encoder = encoders[language];
    const meaning = encoder && { language, vector: (await encoder.embed([text]))[0] };
    return classifier.recognize(text, meaning).name;
  };
  const loaded = [];
  for (let i = 0; i < decoders; i++) loaded.push(await PocketsphinxRecognizer.load({ nbest, ...languageModel }));
  const pool = new RecognizerPool(loaded);
  await pool.useDomainText(sentences);
  return {
    planner,
    route,
    pool,
    decoders,
    close: async () =>
      Promise.all([pool.close(), ...Object.values(encoders).map((e) => e.close())]).then(() => undefined),
  };
}

/** The lab {@link voiceLab} makes. */
export type VoiceLab = Awaited<ReturnType<typeof voiceLab>>;

/**
 * Speaks each utterance in each setting with espeak-ng, decodes it as a worker decodes uploads, and recognises it once
 * per preparation of `steps` (conditioning, noise floor) (with its n-best list), then applies each step's rescoring weight to that list:
 * one row per setting and steps. Utterances are decoded on the lab's decoders in parallel.
 */
export async function evaluateVoice(
  lab: VoiceLab,
  utterances: readonly Utterance[],
  settings: readonly VoiceSetting[],
  steps: readonly VoiceSteps[],
): Promise<VoiceRow[]> {
  const decoder = new AudioDecoder({ maxSeconds: 60 });
  const limit = pLimit(lab.decoders);
  // Intent confidences serve rescoring only.
  const rescoring = steps.some((s) => s.meaningWeight > 0);
  const rows: VoiceRow[] = [];
  for (const setting of settings) {
    // Each distinct preparation is decoded once; the steps that differ only in their rescoring weight share it.
    const preparations = new Map<string, PcmPreparation>(steps.map((s) => [preparationKey(s), s]));
    // Per utterance and preparation: its audio length, the recognition time and the hypotheses.
    const heard = await Promise.all(
      utterances.map((u, k) =>
        limit(async () => {
          const wav = execFileSync('espeak-ng', ['-v', setting.voice, '-s', String(setting.speed), '--stdout', u.text]);
          const audio = await decoder.decode(wav);
          const pcm = setting.noisy ? withNoise(audio.pcm, 10, k + 1) : audio.pcm;
          const out = new Map<string, { ms: number; hypotheses: Array<{ text: string; logScore: number }> }>();
          for (const [key, how] of preparations) {
            const t = performance.now();
            const r = await lab.pool.transcribe(preparePcm(pcm, how), 'en');
            const hypotheses = r.hypotheses ? [...r.hypotheses] : [{ text: r.text, logScore: 0 }];
            const confidences =
              rescoring && hypotheses.length > 1
                ? await lab.planner.intentConfidences(hypotheses.map((h) => h.text))
                : [];
            out.set(key, {
              ms: performance.now() - t,
              hypotheses: hypotheses.map((h, i) => ({ ...h, confidence: confidences[i] ?? 0 })),
            });
          }
          return { u, seconds: audio.seconds, out };
        }),
      ),
    );
    for (const step of steps) {
      const row: VoiceRow = {
        ...setting,
        ...step,
        utterances: utterances.length,
        words: 0,
        wer: 0,
        exact: 0,
        routed: 0,
        rtf: 0,
        misses: [],
      };
      let [errors, ms, seconds] = [0, 0, 0];
      for (const h of heard) {
        const r = h.out.get(preparationKey(step))!;
        const hyps = r.hypotheses as Array<{ text: string; logScore: number; confidence: number }>;
        const text =
          hyps[
            chooseHypothesis(
              hyps,
              hyps.map((x) => x.confidence),
              step.meaningWeight,
            )
          ]?.text ?? '';
        const ref = sentenceWords(h.u.text);
        const e = wordErrors(ref, sentenceWords(text));
        row.words += ref.length;
        errors += e;
        if (e === 0) row.exact++;
        const routedTo = await lab.route(text);
        if (routedTo === h.u.intent) row.routed++;
        else row.misses.push({ said: h.u.text, heard: text, intent: h.u.intent, routedTo });
        ms += r.ms;
        seconds += h.seconds;
      }
      rows.push({ ...row, wer: errors / row.words, routed: row.routed / utterances.length, rtf: ms / 1000 / seconds });
    }
  }
  return rows;
}

function preparationKey(s: PcmPreparation): string {
  return `${s.condition}/${s.noiseFloorDb ?? 'none'}`;
}

/** The share of utterances routed right from their own text: what a perfect transcript reaches. */
export async function routedFromText(lab: VoiceLab, utterances: readonly Utterance[]): Promise<number> {
  let right = 0;
  for (const u of utterances) if ((await lab.route(u.text)) === u.intent) right++;
  return right / utterances.length;
}
