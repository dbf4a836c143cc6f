import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { InstantGenerator } from '../../src/generation/instant-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { Database } from '../../src/storage/database.js';
import type { ReplyDocument } from '../../src/storage/reply-document.js';
import { ROOT, TINY_MODEL_DIR } from '../helpers/paths.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { cleanup, isolatedNames, silentLog, testConfig } from '../helpers/services.js';
import { replyText } from '../helpers/reply-text.js';

/**
 * Slots carried across a conversation's turns, through real workers (the sample shop's intents with both sentence
 * encoders, and a file whose template answers from slots), Redis and the database: a conversation is told each answer
 * before its next message is sent, as a user would.
 */
const workers: Array<{
  config: ReturnType<typeof testConfig>;
  worker: WorkerApp;
  db: Database;
  producer: MessageProducer;
  redis: Redis;
}> = [];
let sequence = 0;

/** Every prompt the last started worker sent to the model. */
let generator: CountingGenerator;

async function startWorker(intentsFile: string) {
  const config = testConfig(isolatedNames('slots'), {
    AVA_INTENTS_FILE: path.join(ROOT, intentsFile),
    AVA_HISTORY_TURNS: '10',
  });
  const db = await Database.connect(config.storage.url, config.storage.dbName);
  generator = new CountingGenerator(new InstantGenerator(await TextTokenizer.load(TINY_MODEL_DIR)));
  const worker = await startWorkerApp(config, generator, silentLog);
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
  });
  const started = { config, worker, db, producer, redis };
  workers.push(started);
  return started;
}

/** Sends a conversation's messages one at a time, each after the reply to the one before; returns the replies. */
async function converse(
  at: Awaited<ReturnType<typeof startWorker>>,
  conversationId: string,
  texts: readonly string[],
): Promise<ReplyDocument[]> {
  const replies: ReplyDocument[] = [];
  for (const text of texts) {
    const messageId = `slots-${++sequence}`;
    await at.producer.enqueueMany([{ v: 1, messageId, conversationId, userId: 'u', text }]);
    await followReplies(at.db, [messageId], (doc) => replies.push(doc), 30_000);
  }
  return replies;
}

let shop: Awaited<ReturnType<typeof startWorker>>;
let shopPrompts: CountingGenerator;
let slotsFile: Awaited<ReturnType<typeof startWorker>>;
beforeAll(async () => {
  shop = await startWorker('config/intents.yaml');
  shopPrompts = generator;
  slotsFile = await startWorker('test/fixtures/intents-slots.yaml');
});
afterAll(async () => {
  for (const { config, worker, db, producer, redis } of workers) {
    await worker.stop();
    await producer.close();
    redis.disconnect();
    await db.close();
    await cleanup(config);
  }
});

describe("a conversation's slots, carried from turn to turn", () => {
  it('answers a follow-up with the order number given a turn before, until the user gives another (English)', async () => {
    const replies = await converse(shop, 'order-en', [
      "Hi, it's about MP-10002",
      'and when will it arrive?',
      'sorry, I meant MP-10003',
      'so when will it arrive?',
    ]);
    expect(replies.map((r) => r.intent)).toEqual(['order_status', 'order_status', 'order_status', 'order_status']);
    expect(replyText(replies[0])).toMatch(/MP-10002 is being packed/);
    expect(replyText(replies[1])).toMatch(/MP-10002 is being packed/);
    expect(replyText(replies[2])).toMatch(/MP-10003 was delivered/);
    expect(replyText(replies[3])).toMatch(/MP-10003 was delivered/);
    // The number is kept on the turn that gave it, in the database (history's durable record).
    const turns = await shop.db.turns.find({ conversationId: 'order-en' }).sort({ seq: 1 }).toArray();
    expect(turns.map((t) => t.slots?.orderId)).toEqual(['MP-10002', undefined, 'MP-10003', undefined]);
  });

  it('does the same in Chinese', async () => {
    const replies = await converse(shop, 'order-zh', ['我的订单号是MP-10001', '那什么时候能到？']);
    expect(replies.map((r) => r.intent)).toEqual(['order_status', 'order_status']);
    expect(replyText(replies[1])).toContain('MP-10001');
    expect(replyText(replies[1])).toContain('顺丰');
  });

  it('keeps slots within their conversation: a new one is asked for the number', async () => {
    const [reply] = await converse(shop, 'order-fresh', ['and when will it arrive?']);
    expect(reply.intent).toBe('order_status');
    expect(replyText(reply)).toMatch(/tell me your order number/);
  });

  it('fills a product and an address from any message, and a template uses them later, in English and Chinese', async () => {
    const en = await converse(slotsFile, 'address-en', [
      'I would like the oak sofa',
      'please deliver it to 12 High Street, Leeds',
      'which address do you have?',
      'my address is 3 Mill Lane, York',
      'which address do you have?',
    ]);
    expect(replyText(en[2])).toBe('We will deliver your sofa to 12 High Street, Leeds.');
    expect(replyText(en[4])).toBe('We will deliver your sofa to 3 Mill Lane, York.');
    const zh = await converse(slotsFile, 'address-zh', [
      '我想买那个台灯',
      '送到杭州市西湖区文三路100号',
      '你们送到哪里？',
    ]);
    expect(replyText(zh[2])).toBe('我们会把您的台灯送到杭州市西湖区文三路100号。');
    const [fresh] = await converse(slotsFile, 'address-fresh', ['which address do you have?']);
    expect(replyText(fresh)).toBe('We will deliver your order to the address on your order.');
  });

  it('sends questions about the conversation itself to the model, with the history in its prompt', async () => {
    const before = shopPrompts.prompts.length;
    const replies = await converse(shop, 'recall', [
      "Hi, it's about MP-10002",
      'what was my order number again?',
      'what did I say before?',
      '我刚才说了什么？',
    ]);
    expect(replies.map((r) => r.intent)).toEqual(['order_status', 'conversation', 'conversation', 'conversation']);
    const prompts = shopPrompts.prompts.slice(before);
    expect(prompts).toHaveLength(3);
    expect(prompts[0]).toContain("User: Hi, it's about MP-10002\nAssistant: Your order MP-10002 is being packed");
    expect(prompts[0]).toMatch(/User: what was my order number again\?\nAssistant:$/);
    expect(prompts[2]).toContain('User: what did I say before?');
  });
});
