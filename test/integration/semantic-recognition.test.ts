import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { SentenceEncoder } from '../../src/embedding/sentence-encoder.js';
import { openEncoder } from '../../src/embedding/load-encoder.js';
import { SemanticIndex } from '../../src/embedding/semantic-index.js';
import { CachedEmbedder } from '../../src/embedding/text-embedder.js';
import { ReplyPlanner } from '../../src/conversation/reply-planner.js';
import { IntentClassifier } from '../../src/intent/intent-classifier.js';
import { loadIntentCatalog } from '../../src/intent/intent-file.js';
import type { IntentCatalog } from '../../src/intent/intent-types.js';
import {
  classifierSemantics,
  plannerSemantics,
  type PlannerSemantics,
} from '../../src/conversation/planner-semantics.js';
import { semanticCalibration } from '../../src/pipeline/worker-parts.js';
import type { Meaning } from '../../src/embedding/text-embedder.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { KnowledgeIndex } from '../../src/knowledge/knowledge-index.js';
import { languageOf } from '../../src/language/search-terms.js';
import { ENCODER_DIR, ROOT, ZH_ENCODER_DIR } from '../helpers/paths.js';
import { isolatedNames, silentLog, testConfig } from '../helpers/services.js';

const defaults = loadConfig({});
const rows = async (file: string) =>
  (await readFile(path.join(ROOT, 'test/fixtures', file), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const pct = (n: number, of: number) => `${((n / of) * 100).toFixed(1)}% (${n}/${of})`;

let encoder: SentenceEncoder;
let zhEncoder: SentenceEncoder;
let embedder: CachedEmbedder;
let zhEmbedder: CachedEmbedder;
let catalog: IntentCatalog;
let semantics: PlannerSemantics;
/** The recogniser as workers have it: words, and the meaning by each language's encoder. */
let hybrid: IntentClassifier;
beforeAll(async () => {
  // The encoders as workers load them: int8 where it holds (the default), else float32.
  encoder = await openEncoder(ENCODER_DIR, testConfig(isolatedNames('semantic')), silentLog);
  zhEncoder = await openEncoder(ZH_ENCODER_DIR, testConfig(isolatedNames('semantic')), silentLog);
  expect(encoder.model.revision).toMatch(/\+int8-u8[su]8$/);
  expect(zhEncoder.model.revision).toMatch(/\+int8-u8[su]8$/);
  embedder = new CachedEmbedder(encoder);
  zhEmbedder = new CachedEmbedder(zhEncoder);
  catalog = await loadIntentCatalog(path.join(ROOT, 'config/intents.yaml'));
  semantics = await plannerSemantics(
    catalog,
    { en: { embedder, encoder: embedder }, zh: { embedder: zhEmbedder, encoder: zhEmbedder } },
    semanticCalibration(defaults),
    silentLog,
  );
  hybrid = new IntentClassifier(catalog.intents, {
    threshold: defaults.intents.threshold,
    semantic: classifierSemantics(semantics),
  });
});
afterAll(async () => {
  await encoder?.close();
  await zhEncoder?.close();
});

/** Each text's meaning, by the encoder of its language. */
async function meaningsOf(texts: readonly string[]): Promise<Meaning[]> {
  const out: Meaning[] = [];
  for (const text of texts) {
    const language = languageOf(text);
    const [vector] = await (language === 'zh' ? zhEmbedder : embedder).embed([text]);
    out.push({ language, vector });
  }
  return out;
}

describe('semantic recognition and retrieval (all-MiniLM-L6-v2 and bge-small-zh-v1.5 beside BM25)', () => {
  it('leaves questions about other things to the model: shop intents claim at most 3 of 90 held-out ones', async () => {
    // Answered by the model either way: no intent, or small talk.
    const free = new Set(['unknown', 'chitchat']);
    const report: string[] = [];
    let heldOut: { set: Array<{ text: string }>; claimed: number } = { set: [], claimed: 0 };
    // Dev sets chose the floors and the off-topic examples; the held-out set only reports (docs/intents.md).
    for (const file of [
      'out-of-domain-dev.jsonl',
      'out-of-domain.jsonl',
      'out-of-domain-natural-dev.jsonl',
      'out-of-domain-heldout.jsonl',
    ]) {
      const set = (await rows(file)) as Array<{ text: string }>;
      const meanings = await meaningsOf(set.map((r) => r.text));
      const claimed = set
        .map((r, i) => ({ text: r.text, got: hybrid.recognize(r.text, meanings[i]) }))
        .filter((r) => !free.has(r.got.name));
      const by = (lang: string) =>
        `${lang} ${claimed.filter((c) => languageOf(c.text) === lang).length}/${set.filter((r) => languageOf(r.text) === lang).length}`;
      report.push(
        `${file}: claimed ${pct(claimed.length, set.length)} (${by('en')}, ${by('zh')})${claimed.map((c) => `; ${c.text} → ${c.got.name} ${c.got.confidence}`).join('')}`,
      );
      if (file === 'out-of-domain-heldout.jsonl') heldOut = { set, claimed: claimed.length };
    }
    console.info(`out-of-domain messages: ${report.join(' | ')}`);
    expect(heldOut.set.filter((r) => languageOf(r.text) === 'en').length).toBeGreaterThanOrEqual(60);
    expect(heldOut.set.filter((r) => languageOf(r.text) === 'zh').length).toBeGreaterThanOrEqual(30);
    // The goal is 2 %; measured 3.3 % (3/90) at the defaults, 24.4 % before the off-topic examples and margins
    // (docs/intents.md). The test fails on any further claim.
    expect(heldOut.claimed).toBeLessThanOrEqual(3);
  });

  it('recognises held-out paraphrases in English (≥ 80 %) and Chinese (≥ 84 %), and loses nothing on intent-eval.jsonl', async () => {
    const lexical = new IntentClassifier(catalog.intents, { threshold: defaults.intents.threshold });
    const accuracy = async (file: string, language: 'en' | 'zh') => {
      const set = ((await rows(file)) as Array<{ text: string; intent: string }>).filter(
        (r) => languageOf(r.text) === language,
      );
      const meanings = await meaningsOf(set.map((r) => r.text));
      const misses = set
        .map((r, i) => ({ ...r, got: hybrid.recognize(r.text, meanings[i]).name }))
        .filter((r) => r.got !== r.intent);
      const words = set.filter((r) => lexical.recognize(r.text).name === r.intent).length;
      return {
        n: set.length,
        words,
        hybrid: set.length - misses.length,
        line: `${file} ${language}: words ${pct(words, set.length)}, words and meaning ${pct(set.length - misses.length, set.length)}; misses: ${misses.map((m) => `${m.text} → ${m.got} (want ${m.intent})`).join('; ')}`,
      };
    };
    const english = await accuracy('intent-paraphrases.jsonl', 'en');
    const chinese = await accuracy('intent-paraphrases-zh-heldout.jsonl', 'zh');
    const chineseDev = await accuracy('intent-paraphrases-dev.jsonl', 'zh');
    const evalEn = await accuracy('intent-eval.jsonl', 'en');
    const evalZh = await accuracy('intent-eval.jsonl', 'zh');
    console.info(`paraphrases: ${[english, chinese, chineseDev, evalEn, evalZh].map((r) => r.line).join(' | ')}`);
    expect((await rows('intent-paraphrases.jsonl')).length).toBeGreaterThanOrEqual(60);
    // Measured 84.6 % at the defaults (docs/intents.md); the target of 90 % is not reached with this model and these examples.
    expect(english.hybrid / english.n).toBeGreaterThanOrEqual(0.8);
    expect(chinese.n).toBeGreaterThanOrEqual(39);
    // The goal is 85 %; measured 84.6 % (33/39) at the defaults, 33.3 % by words alone (docs/intents.md).
    expect(chinese.hybrid).toBeGreaterThanOrEqual(33);
    expect(evalEn.hybrid).toBeGreaterThanOrEqual(evalEn.words);
    expect(evalZh.hybrid).toBeGreaterThanOrEqual(evalZh.words);
  });

  it('retrieves knowledge for paraphrased questions better by words and meaning than by words alone (recall@3)', async () => {
    const entries = (
      await Promise.all(
        ['kb/shop-faq.en.md', 'kb/shop-faq.zh.jsonl'].map(async (f) =>
          parseKnowledgeFile(f, await readFile(path.join(ROOT, f), 'utf8')),
        ),
      )
    )
      .flat()
      .map((e) => ({ ...e, updatedAt: new Date() }));
    const meaningsOfEntries = async (language: 'en' | 'zh', by: CachedEmbedder) => {
      const own = entries.filter((e) => e.language === language);
      const vectors = await by.embed(own.map((e) => `${e.title}\n${e.body}`));
      return {
        index: new SemanticIndex(own.map((e, i) => ({ item: e._id, vector: vectors[i] }))),
        floor: semanticCalibration(defaults).floor[language],
      };
    };
    const lexical = new KnowledgeIndex(entries);
    const hybrid = new KnowledgeIndex(entries, {
      en: await meaningsOfEntries('en', embedder),
      zh: await meaningsOfEntries('zh', zhEmbedder),
    });
    const recall = async (file: string) => {
      const qs = (await rows(file)) as Array<{ q: string; id: string }>;
      const meanings = await meaningsOf(qs.map((q) => q.q));
      const by = (lang: 'en' | 'zh', index: KnowledgeIndex, semantic: boolean) =>
        qs.filter(
          (q, i) =>
            languageOf(q.q) === lang &&
            index.top(q.q, 3, semantic ? meanings[i] : undefined).some((p) => p.id === q.id),
        ).length;
      const n = (lang: 'en' | 'zh') => qs.filter((q) => languageOf(q.q) === lang).length;
      return {
        en: { lexical: by('en', lexical, false), hybrid: by('en', hybrid, true), n: n('en') },
        zh: { lexical: by('zh', lexical, false), hybrid: by('zh', hybrid, true), n: n('zh') },
      };
    };
    const para = await recall('kb-paraphrases.jsonl');
    const plain = await recall('kb-questions.jsonl');
    const zhHeld = (await recall('kb-paraphrases-zh-heldout.jsonl')).zh;
    console.info(
      `knowledge recall@3, paraphrased questions: English lexical ${pct(para.en.lexical, para.en.n)}, hybrid ${pct(para.en.hybrid, para.en.n)}; Chinese (dev) lexical ${pct(para.zh.lexical, para.zh.n)}, hybrid ${pct(para.zh.hybrid, para.zh.n)}; Chinese held out: lexical ${pct(zhHeld.lexical, zhHeld.n)}, hybrid ${pct(zhHeld.hybrid, zhHeld.n)}; kb-questions.jsonl: English ${pct(plain.en.lexical, plain.en.n)} → ${pct(plain.en.hybrid, plain.en.n)}, Chinese ${pct(plain.zh.lexical, plain.zh.n)} → ${pct(plain.zh.hybrid, plain.zh.n)}`,
    );
    expect(para.en.hybrid).toBeGreaterThan(para.en.lexical);
    expect(para.en.hybrid / para.en.n).toBeGreaterThanOrEqual(0.75);
    expect(zhHeld.n).toBeGreaterThanOrEqual(20);
    expect(zhHeld.hybrid / zhHeld.n).toBeGreaterThanOrEqual(0.85);
    expect(plain.en.hybrid).toBeGreaterThanOrEqual(plain.en.lexical);
    expect(plain.zh.hybrid).toBeGreaterThanOrEqual(plain.zh.lexical);
    // An unrelated question finds nothing by meaning, and nothing by words.
    for (const unrelated of ['what is the capital of Peru', '秘鲁的首都是哪里']) {
      const [meaning] = await meaningsOf([unrelated]);
      expect(hybrid.top(unrelated, 3, meaning, true)).toEqual([]);
    }
  });

  it('embeds only the messages whose meaning can change their plan, in one call per batch', async () => {
    const calls: string[][] = [];
    const counting = (inner: SentenceEncoder) => ({
      model: inner.model,
      embed: (texts: readonly string[]) => (calls.push([...texts]), inner.embed(texts)),
    });
    const planner = new ReplyPlanner(
      catalog,
      { intentThreshold: defaults.intents.threshold, kbTopK: 0, kbPassageChars: 600, handlerTimeoutMs: 1_000 },
      undefined,
      undefined,
      {
        languages: {
          en: { ...semantics.languages.en!, embedder: counting(encoder) },
          zh: { ...semantics.languages.zh!, embedder: counting(zhEncoder) },
        },
        log: silentLog,
      },
    );
    const message = (text: string, i: number) => ({
      message: { v: 1 as const, tenant: 'default', messageId: `p-${i}`, conversationId: 'c', userId: 'u', text },
      queuedAt: new Date(),
    });
    const texts = [
      'hello',
      'goodbye',
      'Message 12: I like turtles',
      'can you send things to Australia',
      '可以寄到国外吗',
      '再见',
      '?!?!',
    ];
    const plans = await planner.planAll(texts.map(message));
    // Greetings and goodbyes named by their keywords are answered by templates without an embedding; unreadable text
    // gets none; words no keyword backs need the meaning's support, and each language goes to its own encoder.
    expect(calls).toEqual([['Message 12: I like turtles', 'can you send things to Australia'], ['可以寄到国外吗']]);
    expect(plans.map((p) => p.intent)).toEqual([
      'greeting',
      'goodbye',
      expect.any(String),
      'shipping',
      'shipping',
      'goodbye',
      'invalid',
    ]);
  });

  it('costs a few milliseconds per message, embedded a batch at a time, in either language', async () => {
    const sets = {
      en: [encoder, (i: number) => `message number ${i}: can you tell me when my sofa ${i} will be brought over?`],
      zh: [zhEncoder, (i: number) => `第${i}条消息：请问我买的第${i}张沙发什么时候能送到？`],
    } as const;
    for (const [language, [model, text]] of Object.entries(sets)) {
      const texts = Array.from({ length: 64 }, (_, i) => text(i));
      await model.embed(texts.slice(0, 4));
      const t0 = performance.now();
      await model.embed(texts);
      const perMessage = (performance.now() - t0) / texts.length;
      console.info(
        `sentence encoder (${language}): ${perMessage.toFixed(2)} ms per message in a batch of 64 (1 thread)`,
      );
      expect(perMessage).toBeGreaterThan(0);
    }
  });
});
