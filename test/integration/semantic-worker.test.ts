import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { InstantGenerator } from '../../src/generation/instant-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { startWorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { Database } from '../../src/storage/database.js';
import { KnowledgeRepository } from '../../src/storage/knowledge-repository.js';
import { ENCODER_DIR, ROOT, TINY_MODEL_DIR } from '../helpers/paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from '../helpers/services.js';

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
