import { readFile } from 'node:fs/promises';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION } from '../../src/contract/message-contract.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { loadIntentCatalog } from '../../src/intent/intent-file.js';
import { localize } from '../../src/intent/intent-types.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { Database } from '../../src/storage/database.js';
import { KnowledgeRepository } from '../../src/storage/knowledge-repository.js';
import type { ReplyDocument } from '../../src/storage/reply-document.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { ROOT } from '../helpers/paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from '../helpers/services.js';
import { forgeTinyLlama } from '../helpers/tiny-llama.js';
import { replyText } from '../helpers/reply-text.js';

/**
 * A model that writes English only (the forged tiny Llama's GGUF says `general.languages: [en]`, as SmolLM2's does):
 * Chinese messages must never reach it. Every Chinese message of the evaluation sets goes through a real worker.
 */
const config = testConfig(isolatedNames('model-language'), {
  AVA_ENCODER: 'off',
  AVA_ENCODER_ZH: 'off',
  AVA_INTENTS_FILE: path.join(ROOT, 'config/intents.yaml'),
});
const han = /\p{Script=Han}/u;
let forged: Awaited<ReturnType<typeof forgeTinyLlama>>;
let engine: EngineGenerator;
let counting: CountingGenerator;
let worker: WorkerApp;
let db: Database;
let redis: Redis;
let producer: MessageProducer;

beforeAll(async () => {
  forged = await forgeTinyLlama();
  db = await Database.connect(config.storage.url, config.storage.dbName);
  const kb = await Promise.all(
    ['kb/shop-faq.en.md', 'kb/shop-faq.zh.jsonl'].map(async (f) =>
      parseKnowledgeFile(f, await readFile(path.join(ROOT, f), 'utf8')),
    ),
  );
  await new KnowledgeRepository(db).importEntries(kb.flat());
  engine = await EngineGenerator.load({
    id: 'tiny-llama',
    dir: forged.dir,
    intraOpThreads: 1,
    maxBatchSize: 16,
    maxCachedTokens: 16_384,
    cacheDir: `${forged.dir}.engine-cache`,
  });
  counting = new CountingGenerator(engine);
  worker = await startWorkerApp(config, counting, silentLog);
  redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
  });
});

afterAll(async () => {
  await worker?.stop();
  await engine?.close();
  await producer?.close();
  redis?.disconnect();
  await db?.close();
  await cleanup(config);
  await forged?.cleanup();
});

async function ask(texts: string[], prefix: string): Promise<ReplyDocument[]> {
  const messages = texts.map((text, i) => ({
    v: CONTRACT_VERSION as 1,
    messageId: `${prefix}-${i}`,
    conversationId: `${prefix}-${i}`,
    userId: 'u',
    text,
  }));
  await producer.enqueueMany(messages);
  await followReplies(
    db,
    messages.map((m) => m.messageId),
    () => undefined,
    120_000,
  );
  return Promise.all(messages.map(async (m) => (await db.replies.findOne({ _id: m.messageId }))!));
}

async function chineseOf(file: string): Promise<string[]> {
  return (await readFile(path.join(ROOT, 'test/fixtures', file), 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { text?: string; q?: string })
    .map((r) => r.text ?? r.q ?? '')
    .filter((t) => han.test(t));
}

describe('a model that writes English only', () => {
  it('never gets a Chinese message: each is answered in Chinese by a template, the knowledge base or the fallback', async () => {
    const files = [
      'intent-eval.jsonl',
      'intent-paraphrases-dev.jsonl',
      'intent-paraphrases-zh-heldout.jsonl',
      'kb-paraphrases.jsonl',
      'out-of-domain.jsonl',
    ];
    const sets = await Promise.all(files.map(chineseOf));
    const texts = sets.flat();
    const fileOf = sets.flatMap((set, f) => set.map(() => files[f]));
    expect(texts.length).toBeGreaterThan(100);
    const fallback = localize((await loadIntentCatalog(config.intents.file)).modelLanguageReply, 'zh');
    const before = counting.prompts.length;
    const docs = await ask(texts, 'zh');
    expect(counting.prompts.length - before, 'Chinese prompts sent to the model').toBe(0);
    const by = { template: 0, knowledge: 0, fallback: 0, other: 0 };
    const fallbacks: Record<string, number> = {};
    for (const [i, d] of docs.entries()) {
      expect(d.status).toBe('replied');
      expect(d.tokens.generated).toBe(0);
      expect(replyText(d), `reply to a Chinese message in Chinese (${d._id})`).toMatch(han);
      if (replyText(d) === fallback) {
        by.fallback++;
        fallbacks[fileOf[i]] = (fallbacks[fileOf[i]] ?? 0) + 1;
      } else if (d.passageIds?.length) by.knowledge++;
      else if (d.intent !== 'unknown') by.template++;
      else by.other++;
    }
    console.info(
      `${docs.length} Chinese messages with an English-only model: ${by.template} templates, status or handlers, ${by.knowledge} knowledge entries, ${by.fallback} replies.modelLanguage (${Object.entries(
        fallbacks,
      )
        .map(([f, n]) => `${n} of ${sets[files.indexOf(f)].length} in ${f}`)
        .join(', ')}), ${by.other} other`,
    );
    expect(by.other).toBe(0);
    expect(by.fallback).toBeGreaterThan(0);
  });

  it('still sends English messages no intent owns to the model', async () => {
    const before = counting.prompts.length;
    const [doc] = await ask(['I like turtles'], 'en');
    expect(counting.prompts.length - before).toBe(1);
    expect(doc).toMatchObject({ status: 'replied', intent: 'unknown' });
    expect(doc.tokens.generated).toBeGreaterThan(0);
  });
});
