import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { CONTRACT_VERSION } from '../../src/contract/message-contract.js';
import type { ReplyDocument } from '../../src/storage/reply-document.js';
import { DialogueState } from '../../src/conversation/dialogue-state.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { KnowledgeBase } from '../../src/knowledge/knowledge-base.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { ConversationRepository } from '../../src/storage/conversation-repository.js';
import { Database } from '../../src/storage/database.js';
import { KnowledgeRepository } from '../../src/storage/knowledge-repository.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { StoredReplyMarks } from '../../src/queue/stored-reply-marks.js';
import { messageJobId, RedisKeys } from '../../src/queue/redis-keys.js';
import { ROOT, TINY_MODEL_DIR } from '../helpers/paths.js';
import { bullQueueOf, cleanup, isolatedNames, silentLog, spawnWorker, testConfig } from '../helpers/services.js';
import { replyText } from '../helpers/reply-text.js';

// Lexical recognition only: these tests are about history and the dialogue state, and name the intents the words
// give; semantic recognition has its own tests (semantic-recognition.test.ts).
const config = testConfig(isolatedNames('dialogue'), {
  AVA_ENCODER: 'off',
  AVA_ENCODER_ZH: 'off',
  AVA_INTENTS_FILE: path.join(ROOT, 'config/intents.yaml'),
  AVA_KB_REFRESH_MS: '200',
  AVA_HISTORY_TURNS: '20',
  AVA_HISTORY_CHARS: '100000',
  AVA_MAX_INFLIGHT_BATCHES: '2',
  AVA_BATCH_WAIT_MS: '50',
});
let engine: EngineGenerator;
let generator: CountingGenerator;
let worker: WorkerApp;
let db: Database;
let redis: Redis;
let producer: MessageProducer;
let dialogue: DialogueState;
let queue: Queue;

const run = promisify(execFile);

const sampleEntries = async () =>
  (
    await Promise.all(
      ['kb/shop-faq.en.md', 'kb/shop-faq.zh.jsonl'].map(async (f) =>
        parseKnowledgeFile(f, await readFile(path.join(ROOT, f), 'utf8')),
      ),
    )
  ).flat();

beforeAll(async () => {
  db = await Database.connect(config.storage.url, config.storage.dbName);
  await new KnowledgeRepository(db).importEntries(await sampleEntries());
  engine = await EngineGenerator.load({
    id: 'tiny',
    dir: TINY_MODEL_DIR,
    intraOpThreads: 1,
    maxBatchSize: 16,
    maxCachedTokens: 16_384,
  });
  generator = new CountingGenerator(engine);
  worker = await startWorkerApp(config, generator, silentLog);
  redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
  });
  dialogue = new DialogueState(db, new ConversationRepository(db, { maxTurns: 20, maxChars: 100_000 }), producer.view);
  queue = bullQueueOf(config, redis);
});

afterAll(async () => {
  await worker?.stop();
  await engine?.close();
  await producer?.close();
  await queue?.close();
  redis?.disconnect();
  await db?.close();
  await cleanup(config);
});

let seq = 0;
const msg = (conversationId: string, text: string) => ({
  v: CONTRACT_VERSION as 1,
  messageId: `d-${++seq}`,
  conversationId,
  userId: 'u-dialogue',
  text,
});

/**
 * Enqueues messages and waits for their replies, then for their jobs to be acknowledged: a worker writes the turns
 * between the two, and the next message of a test must find them in its history.
 */
async function ask(...messages: Array<ReturnType<typeof msg>>): Promise<ReplyDocument[]> {
  await producer.enqueueMany(messages);
  await followReplies(
    db,
    messages.map((m) => m.messageId),
    () => undefined,
    60_000,
  );
  for (const m of messages) {
    await expect
      .poll(() => queue.getJobState(messageJobId(m.messageId)), { timeout: 15_000, interval: 20 })
      .toMatch(/^(completed|failed|unknown)$/);
  }
  return Promise.all(messages.map(async (m) => (await db.replies.findOne({ _id: m.messageId }))!));
}

describe('intents, dialogue state and knowledge on real Redis, the database and ONNX Runtime', () => {
  it('records the intent on every reply and answers each through its handler', async () => {
    const before = generator.prompts.length;
    const [hello, thanks, order, payment, turtles] = await ask(
      msg('intents', 'hello there'),
      msg('intents-zh', '谢谢你的帮助'),
      msg('intents-order', 'where is my order MP-10001?'),
      msg('intents-pay', 'my card got declined, why did my payment fail?'),
      msg('intents-other', 'I like turtles'),
    );
    expect(hello).toMatchObject({
      status: 'replied',
      intent: 'greeting',
      text: expect.stringContaining('Maple & Pine Home Goods'),
      tokens: { generated: 0 },
    });
    expect(hello.recognition!.ranking[0]).toEqual({ name: 'greeting', confidence: hello.recognition!.confidence });
    expect(thanks).toMatchObject({ status: 'replied', intent: 'thanks', text: '不客气！还有什么可以帮您的吗？' });
    expect(order).toMatchObject({
      status: 'replied',
      intent: 'order_status',
      text: expect.stringContaining('SF1234567890'),
    });
    expect(payment).toMatchObject({
      status: 'replied',
      intent: 'payment',
      passageIds: expect.arrayContaining(['en-payment-failed']),
    });
    expect(payment.passageIds![0]).toBe('en-payment-failed');
    expect(payment.tokens.generated).toBeGreaterThan(0);
    expect(turtles).toMatchObject({ status: 'replied', intent: 'unknown' });
    expect(turtles.passageIds).toBeUndefined();
    // Only the knowledge question and the unknown one reached the model; the passages came before the dialogue.
    const prompts = generator.prompts.slice(before);
    expect(prompts).toHaveLength(2);
    const paymentPrompt = prompts.find((p) => p.includes('my card got declined'))!;
    // The intents file's persona, then the passages, then the dialogue.
    expect(paymentPrompt).toMatch(
      /^You are AVA, [^]*\n\nKnowledge:\n- Why did my payment fail\?: A payment usually fails/,
    );
    expect(paymentPrompt.endsWith('User: my card got declined, why did my payment fail?\nAssistant:')).toBe(true);
    expect(prompts.find((p) => p.includes('turtles'))).toMatch(
      /^You are AVA, [^\n]*\n\nUser: I like turtles\nAssistant:$/,
    );
  });

  it('answers a knowledge intent set to `answer: entry` with the best entry itself, without the model', async () => {
    const before = generator.prompts.length;
    const [shipping, zh] = await ask(
      msg('entry-en', 'How much does shipping cost?'),
      msg('entry-zh', '你们的退货政策是什么？'),
    );
    const entries = new Map((await sampleEntries()).map((e) => [e._id, e]));
    expect(shipping).toMatchObject({
      status: 'replied',
      intent: 'shipping',
      passageIds: ['en-shipping-cost'],
      tokens: { generated: 0 },
    });
    expect(replyText(shipping)).toBe(entries.get('en-shipping-cost')!.body);
    expect(zh).toMatchObject({ status: 'replied', intent: 'returns', passageIds: ['zh-return-policy'] });
    expect(replyText(zh)).toBe(entries.get('zh-return-policy')!.body);
    expect(generator.prompts.length).toBe(before);
  });

  it('answers unreadable input with "please rephrase" without calling the model, and keeps it out of the history', async () => {
    const before = generator.prompts.length;
    const texts = ['?!?!...', 'aaaaaaaa', '\uFFFD\uFFFD\uFFFD', 'sdfghjkl', '哈哈哈哈'];
    const docs = await ask(...texts.map((t) => msg('unreadable', t)));
    for (const d of docs)
      expect(d).toMatchObject({
        status: 'replied',
        intent: 'invalid',
        recognition: { reason: expect.any(String) },
        tokens: { prompt: 0, generated: 0 },
      });
    expect(replyText(docs[0])).toMatch(/rephrase/);
    expect(replyText(docs[4])).toMatch(/换一种说法/);
    expect(generator.prompts.length).toBe(before);
    expect(await db.turns.countDocuments({ conversationId: 'unreadable' })).toBe(0);
  });

  it('puts the history into the next prompt, as many recent turns as fit the model window, with their intents', async () => {
    await ask(msg('history', 'hello'));
    await ask(msg('history', 'My name is Ada and I live in Hangzhou.'));
    const before = generator.prompts.length;
    const [third] = await ask(msg('history', 'What is my name?'));
    const prompt = generator.prompts[before];
    expect(prompt).toContain(`User: hello\nAssistant: Hello! I'm AVA`);
    expect(prompt).toContain('User: My name is Ada and I live in Hangzhou.\nAssistant: ');
    expect(prompt.endsWith('User: What is my name?\nAssistant:')).toBe(true);
    // The pieces' ids joined are the ids of the joined text.
    expect(third.tokens.prompt).toBe(engine.tokenizer.encode(prompt).length);
    // Turns are written just after the replies are stored.
    await expect
      .poll(async () => (await dialogue.conversation('history'))!.turns.map((t) => t.intent))
      .toEqual(['greeting', 'conversation', 'conversation']);
    expect((await dialogue.conversation('history'))!.messages.map((m) => m.status)).toEqual([
      'replied',
      'replied',
      'replied',
    ]);

    // A history far longer than the window: only the newest turns that fit go in, and prompt + new tokens fit.
    const long = Array.from({ length: 12 }, (_, i) =>
      msg('long-history', `Turn ${i}: ${'tell me more about the weather in spring '.repeat(12)}`),
    );
    for (const m of long) await ask(m);
    const at = generator.prompts.length;
    await ask(msg('long-history', 'And now?'));
    const fitted = generator.prompts[at];
    expect(engine.tokenizer.encode(fitted).length).toBeLessThanOrEqual(engine.window - config.engine.maxNewTokens);
    expect(fitted).toContain('Turn 11:');
    expect(fitted).not.toContain('Turn 0:');
    expect(fitted).toMatch(/^You are AVA, [^\n]*\n\nUser: Turn /);
  });

  it('writes the turn of a reply an earlier attempt stored before it failed, without generating again', async () => {
    const now = new Date();
    const stored = (id: string, text: string) => ({
      _id: id,
      tenant: 'default',
      conversationId: 'crashed',
      userId: 'u1',
      status: 'replied' as const,
      text,
      finishReason: 'stop' as const,
      intent: 'chitchat',
      model: engine.model,
      tokens: { prompt: 5, generated: 4 },
      timings: { queuedAt: now, startedAt: now, finishedAt: now, inferenceMs: 1 },
      createdAt: now,
    });
    // What an attempt leaves when the database fails after the replies were stored (and the jobs marked) and before
    // the turns were written; BullMQ counts the failed attempt (attemptsMade 1).
    const retry = async (id: string, markIt: boolean) => {
      // A message the sample intents send to the model (unknown), so that an unmarked retry reaches it.
      const m = { ...msg('crashed', 'I like turtles'), messageId: id };
      const jobId = messageJobId(id);
      await queue.add('message', m, { jobId, delay: 60_000 });
      const job = (await queue.getJob(jobId))!;
      if (markIt)
        await new StoredReplyMarks(redis, new RedisKeys(config.queue.prefix, config.queue.name)).mark([
          { job, reply: { status: 'replied', text: 'Once upon a time…', intent: 'chitchat' } },
        ]);
      await redis.hset(`${config.queue.prefix}:${config.queue.name}:${jobId}`, 'atm', '1');
      await job.promote();
    };
    await db.replies.insertOne(stored('crashed-1', 'Once upon a time…'));
    const before = generator.prompts.length;
    await retry('crashed-1', true);
    await expect
      .poll(() => db.turns.findOne({ _id: 'crashed-1' }), { timeout: 15_000 })
      .toMatchObject({ conversationId: 'crashed', assistant: 'Once upon a time…', intent: 'chitchat' });
    expect(generator.prompts.length).toBe(before);
    // Without the mark (the worker died between storing and marking) it is generated again, and the first reply is
    // kept, with its turn.
    await db.replies.insertOne(stored('crashed-2', 'There once was a ship…'));
    await retry('crashed-2', false);
    await expect
      .poll(() => db.turns.findOne({ _id: 'crashed-2' }), { timeout: 15_000 })
      .toMatchObject({ assistant: 'There once was a ship…' });
    expect(generator.prompts.length).toBe(before + 1);
    expect(await db.replies.findOne({ _id: 'crashed-2' })).toMatchObject({ text: 'There once was a ship…' });
    expect(await db.replies.countDocuments({ conversationId: 'crashed' })).toBe(2);
  });

  it('moves each message through queued → processing → replied with timestamps, and answers "where is my answer?" from that state', async () => {
    let release!: () => void;
    generator.hold = new Promise((r) => (release = r));
    // Released however the test ends, so a failure here cannot hold every later test's generation.
    onTestFinished(() => {
      release();
      generator.hold = undefined;
    });
    const first = msg('status', 'Tell me about your company history please');
    await producer.enqueue(first);
    const queuedOrProcessing = await dialogue.message(first.messageId);
    expect(['queued', 'processing']).toContain(queuedOrProcessing!.status);
    // The worker's record appears once the batch holding the message is complete and being processed.
    await expect.poll(() => db.messages.countDocuments({ _id: first.messageId }), { timeout: 10_000 }).toBe(1);
    const processing = (await dialogue.message(first.messageId))!;
    expect(processing.status).toBe('processing');
    expect(processing.startedAt!.getTime()).toBeGreaterThanOrEqual(processing.queuedAt.getTime());

    // The status question is answered from the dialogue state while the first message is still being generated.
    const [status] = await ask(msg('status', 'where is my answer?'));
    expect(status).toMatchObject({
      status: 'replied',
      intent: 'answer_status',
      text: expect.stringContaining('Your earlier message is being processed'),
    });
    release();
    generator.hold = undefined;
    await followReplies(db, [first.messageId], () => undefined, 30_000);
    const done = (await dialogue.message(first.messageId))!;
    expect(done.status).toBe('replied');
    expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
    const [again] = await ask(msg('status', '我的问题有回复了吗'));
    expect(replyText(again)).toMatch(/之前的消息都已回复/);
    expect((await dialogue.conversation('status'))!.messages.map((m) => [m.intent, m.status])).toEqual([
      ['chitchat', 'replied'],
      ['answer_status', 'replied'],
      ['answer_status', 'replied'],
    ]);
    expect(await dialogue.message('never-sent')).toBeNull();
  });

  it('retrieves the right entry for knowledge questions from the stored knowledge base (recall@3 over 32 questions)', async () => {
    const kb = new KnowledgeBase(new KnowledgeRepository(db), { refreshMs: 0 }, silentLog);
    await kb.start();
    const questions = (await readFile(path.join(ROOT, 'test/fixtures/kb-questions.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { q: string; id: string });
    const hits = questions.filter((q) => kb.top(q.q, 3).some((p) => p.id === q.id)).length;
    console.log(
      `knowledge base in the database: ${kb.stats.entries} entries, recall@3 ${((hits / questions.length) * 100).toFixed(1)}% over ${questions.length} questions`,
    );
    expect(hits / questions.length).toBeGreaterThanOrEqual(0.9);
    const [shipping] = await ask(msg('kb', 'how much does shipping cost for a sofa?'));
    expect(shipping).toMatchObject({ intent: 'shipping' });
    expect(shipping.passageIds![0]).toBe('en-shipping-cost');
  });

  it('rebuilds the index in running workers within seconds when another process imports knowledge', async () => {
    const file = path.join(os.tmpdir(), `ava-kb-${process.pid}.jsonl`);
    await writeFile(
      file,
      '{"id":"en-pets","title":"Can I bring my dog to the showroom?","body":"Dogs on a leash are welcome in every Maple & Pine showroom.","tags":["pets","dog"]}\n',
    );
    try {
      const env = {
        ...process.env,
        AVA_REDIS_URL: config.redis.url,
        AVA_MONGO_URL: config.storage.url,
        AVA_DB_NAME: config.storage.dbName,
        AVA_QUEUE_NAME: config.queue.name,
      };
      const { stdout } = await run(process.execPath, ['bin/ava.js', 'kb', 'import', file], {
        cwd: ROOT,
        env,
        timeout: 60_000,
      });
      expect(stdout).toMatch(/imported 1 entries: 1 new, 0 updated, 0 unchanged, 0 removed/);
    } finally {
      await rm(file, { force: true });
    }
    // "store_info" is a knowledge intent: the worker's index must now hold the new entry.
    await expect
      .poll(async () => (await ask(msg('kb-live', 'where is your showroom, can I bring my dog?')))[0].passageIds?.[0], {
        timeout: 10_000,
        interval: 300,
      })
      .toBe('en-pets');
  });
});

describe('a custom handler that fails, and a bad intents file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ava-handlers-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('fails only the message whose handler throws or times out (ERR_HANDLER); the rest of the batch is answered, control characters dropped', async () => {
    await writeFile(
      path.join(dir, 'broken.ts'),
      `export function handle(ctx) {\n  if (ctx.message.text.includes('slow')) return new Promise(() => {});\n  if (ctx.message.text.includes('nul')) return { reply: 'order \\u0000MP-1\\u0007 found' };\n  throw new Error('order system is down');\n}\n`,
    );
    await writeFile(
      path.join(dir, 'intents.yaml'),
      `version: 1\nintents:\n  - name: order\n    handler: { module: ./broken.ts }\n    examples: { en: [where is my order] }\n  - name: greeting\n    handler: template\n    reply: Hi {userId}!\n    examples: { en: [hello] }\n`,
    );
    const own = testConfig(isolatedNames('handler'), {
      AVA_INTENTS_FILE: path.join(dir, 'intents.yaml'),
      AVA_HANDLER_TIMEOUT_MS: '300',
    });
    const app = await startWorkerApp(own, generator, silentLog);
    const ownDb = await Database.connect(own.storage.url, own.storage.dbName);
    const ownRedis = new Redis(own.redis.url, { maxRetriesPerRequest: null });
    const ownProducer = new MessageProducer(ownRedis, new RedisKeys(own.queue.prefix, own.queue.name), {
      attempts: 3,
      backoffMs: 100,
    });
    try {
      const ms = [
        msg('h', 'where is my order'),
        msg('h', 'hello'),
        msg('h', 'where is my order, slow'),
        msg('h', 'I like turtles'),
        msg('h', 'where is my order, nul'),
      ];
      await ownProducer.enqueueMany(ms);
      await followReplies(
        ownDb,
        ms.map((m) => m.messageId),
        () => undefined,
        30_000,
      );
      const docs = await Promise.all(ms.map((m) => ownDb.replies.findOne({ _id: m.messageId })));
      expect(docs[0]).toMatchObject({
        status: 'failed',
        intent: 'order',
        error: { code: 'ERR_HANDLER', message: expect.stringContaining('order system is down') },
      });
      expect(docs[1]).toMatchObject({ status: 'replied', intent: 'greeting', text: 'Hi u-dialogue!' });
      expect(docs[2]).toMatchObject({
        status: 'failed',
        error: { code: 'ERR_HANDLER', message: expect.stringContaining('did not answer within 300 ms') },
      });
      expect(docs[3]).toMatchObject({ status: 'replied', intent: 'unknown' });
      // Control characters (NUL is refused by FerretDB) are dropped from what a handler returns, not stored.
      expect(docs[4]).toMatchObject({ status: 'replied', intent: 'order', text: 'order MP-1 found' });
    } finally {
      await app.stop();
      await ownProducer.close();
      ownRedis.disconnect();
      await ownDb.close();
      await cleanup(own);
    }
  });

  it('refuses to start a worker with a bad intents file, naming the file, line and reason', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(
      bad,
      'version: 1\nintents:\n  - name: order\n    handler: lookup\n    examples: { en: [where is my order] }\n',
    );
    const w = spawnWorker({ ...config, intents: { ...config.intents, file: bad } });
    const code = await w.exited;
    expect(code).toBe(1);
    expect(JSON.stringify(w.lines)).toMatch(new RegExp(`ERR_INTENTS_FILE.*bad\\.yaml:4: handler must be one of`));
  });
});
