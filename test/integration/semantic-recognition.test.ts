import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import os from 'node:os';
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
import { embedExamples } from '../../src/intent/semantic-examples.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { KnowledgeIndex } from '../../src/knowledge/knowledge-index.js';
import { languageOf, searchTerms } from '../../src/language/search-terms.js';
import { startWorkerApp } from '../../src/pipeline/worker-app.js';
import { InstantGenerator } from '../../src/generation/instant-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { KnowledgeRepository } from '../../src/storage/knowledge-repository.js';
import { Database } from '../../src/storage/database.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { Redis } from 'ioredis';
import { ENCODER_DIR, ROOT, TINY_MODEL_DIR } from '../helpers/paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from '../helpers/services.js';

const defaults = loadConfig({});
const rows = async (file: string) =>
  (await readFile(path.join(ROOT, 'test/fixtures', file), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const pct = (n: number, of: number) => `${((n / of) * 100).toFixed(1)}% (${n}/${of})`;

let encoder: SentenceEncoder;
let embedder: CachedEmbedder;
let catalog: IntentCatalog;
beforeAll(async () => {
  // The encoder as workers load it: int8 where it holds (the default), else float32.
  encoder = await openEncoder(ENCODER_DIR, testConfig(isolatedNames('semantic')), silentLog);
  expect(encoder.model.revision).toMatch(/\+int8-u8[su]8$/);
  embedder = new CachedEmbedder(encoder);
  catalog = await loadIntentCatalog(path.join(ROOT, 'config/intents.yaml'));
});
afterAll(async () => {
  await encoder?.close();
});

/**
 * The texts that share a content word with an intent's examples or keywords (stemmed; for Chinese, words of two or
 * more characters), with those words: none may, for a set to be held out for real.
 */
function sharedWords(texts: ReadonlyArray<{ text: string }>): Array<{ text: string; words: string[] }> {
  const segmenter = new Intl.Segmenter('zh', { granularity: 'word' });
  const chineseWords = (t: string) =>
    [...segmenter.segment(t)]
      .filter(
        (s) =>
          s.isWordLike &&
          /\p{Script=Han}/u.test(s.segment) &&
          [...s.segment].length > 1 &&
          searchTerms(s.segment).length > 0,
      )
      .map((s) => s.segment);
  const vocabulary = new Set(
    catalog.intents
      .flatMap((i) => [...i.examples.en, ...i.examples.zh, ...i.keywords])
      .flatMap((t) => [...searchTerms(t).filter((w) => !/\p{Script=Han}/u.test(w)), ...chineseWords(t)]),
  );
  return texts
    .map((r) => ({
      text: r.text,
      words: (languageOf(r.text) === 'en' ? searchTerms(r.text) : chineseWords(r.text)).filter((w) =>
        vocabulary.has(w),
      ),
    }))
    .filter((r) => r.words.length > 0);
}

describe('semantic recognition and retrieval (all-MiniLM-L6-v2 beside BM25)', () => {
  it('leaves messages about other topics to the model: no shop intent claims them (held-out false claims at most 2 %)', async () => {
    const hybrid = new IntentClassifier(catalog.intents, {
      threshold: defaults.intents.threshold,
      semantic: {
        index: await embedExamples(catalog.intents, embedder),
        floor: defaults.semantic.floor,
        temperature: defaults.semantic.temperature,
        decisive: defaults.semantic.decisive,
      },
    });
    // Answered by the model either way: no intent, or small talk.
    const free = new Set(['unknown', 'chitchat']);
    const report: string[] = [];
    for (const file of ['out-of-domain-dev.jsonl', 'out-of-domain.jsonl']) {
      const set = (await rows(file)) as Array<{ text: string }>;
      expect(sharedWords(set)).toEqual([]);
      const english = set.filter((r) => languageOf(r.text) === 'en');
      const vectors = new Map((await embedder.embed(english.map((r) => r.text))).map((v, i) => [english[i].text, v]));
      const claimed = set
        .map((r) => ({ text: r.text, got: hybrid.recognize(r.text, vectors.get(r.text)) }))
        .filter((r) => !free.has(r.got.name));
      const by = (lang: string) =>
        `${lang} ${claimed.filter((c) => languageOf(c.text) === lang).length}/${set.filter((r) => languageOf(r.text) === lang).length}`;
      report.push(
        `${file}: claimed ${pct(claimed.length, set.length)} (${by('en')}, ${by('zh')})${claimed.map((c) => `; ${c.text} → ${c.got.name} ${c.got.confidence}`).join('')}`,
      );
      if (file === 'out-of-domain.jsonl') {
        expect(set.filter((r) => languageOf(r.text) === 'en').length).toBeGreaterThanOrEqual(60);
        expect(set.filter((r) => languageOf(r.text) === 'zh').length).toBeGreaterThanOrEqual(30);
        expect(claimed.length / set.length).toBeLessThanOrEqual(0.02);
      }
    }
    console.info(`out-of-domain messages: ${report.join(' | ')}`);
  });

  it('recognises held-out paraphrases that share no word with any example, and leaves Chinese as the words decide it', async () => {
    const held = (await rows('intent-paraphrases.jsonl')) as Array<{ text: string; intent: string }>;
    expect(sharedWords(held)).toEqual([]);
    const english = held.filter((r) => languageOf(r.text) === 'en');
    const chinese = held.filter((r) => languageOf(r.text) === 'zh');
    expect(english.length).toBeGreaterThanOrEqual(60);
    expect(chinese.length).toBeGreaterThanOrEqual(30);

    const lexical = new IntentClassifier(catalog.intents, { threshold: defaults.intents.threshold });
    const hybrid = new IntentClassifier(catalog.intents, {
      threshold: defaults.intents.threshold,
      semantic: {
        index: await embedExamples(catalog.intents, embedder),
        floor: defaults.semantic.floor,
        temperature: defaults.semantic.temperature,
        decisive: defaults.semantic.decisive,
      },
    });
    const vectors = await embedder.embed(english.map((r) => r.text));
    const enLexical = english.filter((r) => lexical.recognize(r.text).name === r.intent).length;
    const enHybridMisses = english
      .map((r, i) => ({ ...r, got: hybrid.recognize(r.text, vectors[i]).name }))
      .filter((r) => r.got !== r.intent);
    const zhLexical = chinese.filter((r) => lexical.recognize(r.text).name === r.intent).length;
    console.info(
      `held-out paraphrases: English lexical ${pct(enLexical, english.length)}, hybrid ${pct(english.length - enHybridMisses.length, english.length)}; Chinese lexical = hybrid ${pct(zhLexical, chinese.length)}` +
        `; English misses: ${enHybridMisses.map((m) => `${m.text} → ${m.got} (want ${m.intent})`).join('; ')}`,
    );
    // Measured 83.1 % at the defaults (docs/intents.md); the target of 90 % is not reached with this model and these examples.
    expect((english.length - enHybridMisses.length) / english.length).toBeGreaterThanOrEqual(0.8);
    expect(enLexical / english.length).toBeLessThan(0.2);
    // Chinese messages get no embedding (the encoder is English-only), so they are recognised exactly as before.
    expect(chinese.every((r) => languageOf(r.text) === 'zh')).toBe(true);

    // The original held-out set (shared words allowed) loses nothing to the semantic evidence.
    const evalSet = ((await rows('intent-eval.jsonl')) as Array<{ text: string; intent: string }>).filter(
      (r) => languageOf(r.text) === 'en',
    );
    const evalVectors = await embedder.embed(evalSet.map((r) => r.text));
    const evalLexical = evalSet.filter((r) => lexical.recognize(r.text).name === r.intent).length;
    const evalHybrid = evalSet.filter((r, i) => hybrid.recognize(r.text, evalVectors[i]).name === r.intent).length;
    console.info(
      `intent-eval.jsonl, English: lexical ${pct(evalLexical, evalSet.length)}, hybrid ${pct(evalHybrid, evalSet.length)}`,
    );
    expect(evalHybrid).toBeGreaterThanOrEqual(evalLexical);
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
    const english = entries.filter((e) => e.language === 'en');
    const vectors = await embedder.embed(english.map((e) => `${e.title}\n${e.body}`));
    const lexical = new KnowledgeIndex(entries);
    const hybrid = new KnowledgeIndex(entries, {
      index: new SemanticIndex(english.map((e, i) => ({ item: e._id, vector: vectors[i] }))),
      floor: defaults.semantic.floor,
    });
    const recall = async (file: string) => {
      const qs = (await rows(file)) as Array<{ q: string; id: string }>;
      const qv = await embedder.embed(qs.map((q) => q.q));
      const by = (lang: 'en' | 'zh', index: KnowledgeIndex, semantic: boolean) =>
        qs.filter(
          (q, i) =>
            languageOf(q.q) === lang &&
            index.top(q.q, 3, semantic && lang === 'en' ? qv[i] : undefined).some((p) => p.id === q.id),
        ).length;
      const n = (lang: 'en' | 'zh') => qs.filter((q) => languageOf(q.q) === lang).length;
      return {
        en: { lexical: by('en', lexical, false), hybrid: by('en', hybrid, true), n: n('en') },
        zh: { lexical: by('zh', lexical, false), hybrid: by('zh', hybrid, true), n: n('zh') },
      };
    };
    const para = await recall('kb-paraphrases.jsonl');
    const plain = await recall('kb-questions.jsonl');
    console.info(
      `knowledge recall@3, paraphrased questions: English lexical ${pct(para.en.lexical, para.en.n)}, hybrid ${pct(para.en.hybrid, para.en.n)}; Chinese lexical ${pct(para.zh.lexical, para.zh.n)}, hybrid ${pct(para.zh.hybrid, para.zh.n)}; kb-questions.jsonl: English ${pct(plain.en.lexical, plain.en.n)} → ${pct(plain.en.hybrid, plain.en.n)}`,
    );
    expect(para.en.hybrid).toBeGreaterThan(para.en.lexical);
    expect(para.en.hybrid / para.en.n).toBeGreaterThanOrEqual(0.75);
    expect(para.zh.hybrid).toBe(para.zh.lexical);
    expect(plain.en.hybrid).toBeGreaterThanOrEqual(plain.en.lexical);
    // An unrelated question finds nothing by meaning, and nothing by words.
    const [unrelated] = await embedder.embed(['what is the capital of Peru']);
    expect(hybrid.top('what is the capital of Peru', 3, unrelated)).toEqual([]);
  });

  it('embeds only the messages whose meaning can change their plan, in one call per batch', async () => {
    const calls: string[][] = [];
    const counting = {
      model: encoder.model,
      embed: (texts: readonly string[]) => (calls.push([...texts]), encoder.embed(texts)),
    };
    const planner = new ReplyPlanner(
      catalog,
      { intentThreshold: defaults.intents.threshold, kbTopK: 0, kbPassageChars: 600, handlerTimeoutMs: 1_000 },
      undefined,
      undefined,
      {
        embedder: counting,
        examples: await embedExamples(catalog.intents, encoder),
        floor: defaults.semantic.floor,
        temperature: defaults.semantic.temperature,
        decisive: defaults.semantic.decisive,
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
      '?!?!',
    ];
    const plans = await planner.planAll(texts.map(message));
    // Greetings and goodbyes are settled by their words and answered by templates; Chinese and unreadable text get no
    // embedding; a salient word ("Message") alone does not settle an intent.
    expect(calls).toEqual([['Message 12: I like turtles', 'can you send things to Australia']]);
    expect(plans.map((p) => p.intent)).toEqual([
      'greeting',
      'goodbye',
      expect.any(String),
      'shipping',
      'shipping',
      'invalid',
    ]);
  });

  it('costs a few milliseconds per message, embedded a batch at a time', async () => {
    const texts = Array.from(
      { length: 64 },
      (_, i) => `message number ${i}: can you tell me when my sofa ${i} will be brought over?`,
    );
    await encoder.embed(texts.slice(0, 4));
    const t0 = performance.now();
    await encoder.embed(texts);
    const perMessage = (performance.now() - t0) / texts.length;
    console.info(`sentence encoder: ${perMessage.toFixed(2)} ms per message in a batch of 64 (1 thread)`);
    expect(perMessage).toBeGreaterThan(0);
  });
});

describe('a worker with and without the encoder', () => {
  const opened: Array<() => Promise<void>> = [];
  afterAll(async () => {
    while (opened.length) await opened.pop()!();
  });

  it('answers a paraphrase by meaning, through the batch', async () => {
    const config = testConfig(isolatedNames('semantic'), {
      AVA_INTENTS_FILE: path.join(ROOT, 'config/intents.yaml'),
      AVA_ENCODER: ENCODER_DIR,
    });
    const db = await Database.connect(config.storage.url, config.storage.dbName);
    const entries = (
      await Promise.all(
        ['kb/shop-faq.en.md', 'kb/shop-faq.zh.jsonl'].map(async (f) =>
          parseKnowledgeFile(f, await readFile(path.join(ROOT, f), 'utf8')),
        ),
      )
    ).flat();
    await new KnowledgeRepository(db).importEntries(entries);
    const worker = await startWorkerApp(
      config,
      new InstantGenerator(await TextTokenizer.load(TINY_MODEL_DIR)),
      silentLog,
    );
    const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
    const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
      attempts: 3,
      backoffMs: 100,
    });
    opened.push(async () => {
      await worker.stop();
      await producer.close();
      redis.disconnect();
      await db.close();
      await cleanup(config);
    });
    await producer.enqueueMany([
      { v: 1, messageId: 's-1', conversationId: 'c1', userId: 'u', text: 'can you send things to Australia' },
      { v: 1, messageId: 's-2', conversationId: 'c2', userId: 'u', text: '可以寄到国外吗' },
    ]);
    await followReplies(db, ['s-1', 's-2'], () => undefined, 30_000);
    const [en, zh] = await Promise.all(['s-1', 's-2'].map((id) => db.replies.findOne({ _id: id })));
    expect(en).toMatchObject({ intent: 'shipping', passageIds: ['en-international'] });
    expect(zh).toMatchObject({ intent: 'shipping', passageIds: ['zh-international'] });
  });

  it('falls back to words with a warning when the encoder is missing, and refuses to start with a corrupt one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-encoder-'));
    opened.push(() => rm(dir, { recursive: true, force: true }));
    const warnings: string[] = [];
    const log = Object.assign(Object.create(silentLog), {
      warn: (_o: unknown, m: string) => warnings.push(m),
      info: () => undefined,
      child: () => log,
    });
    const missing = testConfig(isolatedNames('noencoder'), { AVA_ENCODER: path.join(dir, 'absent') });
    const worker = await startWorkerApp(missing, new InstantGenerator(await TextTokenizer.load(TINY_MODEL_DIR)), log);
    opened.push(async () => {
      await worker.stop();
      await cleanup(missing);
    });
    expect(warnings.some((w) => /sentence encoder not found/.test(w))).toBe(true);
    const corrupt = path.join(dir, 'corrupt');
    await mkdir(path.join(corrupt, 'onnx'), { recursive: true });
    await writeFile(path.join(corrupt, 'onnx', 'model.onnx'), 'truncated');
    const bad = testConfig(isolatedNames('badencoder'), { AVA_ENCODER: corrupt });
    await expect(
      startWorkerApp(bad, new InstantGenerator(await TextTokenizer.load(TINY_MODEL_DIR)), silentLog),
    ).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
  });
});
