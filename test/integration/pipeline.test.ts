import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, MESSAGE_JOB_NAME } from '../../src/contract/message-contract.js';
import { PipelineGenerator } from '../../src/generation/pipeline-generator.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { messageJobId, RedisKeys } from '../../src/queue/redis-keys.js';
import { ReplyCounters } from '../../src/metrics/reply-counters.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { Database } from '../../src/storage/database.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { compareGreedy, greedyPath } from '../helpers/greedy-agreement.js';
import { DecoderEngine } from '../../src/inference/decoder-engine.js';
import { cleanup, isolatedNames, MONGO_URL, silentLog, testConfig } from '../helpers/services.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { replyText } from '../helpers/reply-text.js';

let generator: PipelineGenerator;
beforeAll(async () => {
  generator = await PipelineGenerator.load({ id: 'tiny', dir: TINY_MODEL_DIR, intraOpThreads: 1 });
});
afterAll(async () => generator.close());

/** One test's world: its own queue and database, a producer, a database handle, and workers it starts. */
async function world(tag: string, overrides: Record<string, string> = {}) {
  const config = testConfig(isolatedNames(tag), overrides);
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
  });
  const db = await Database.connect(config.storage.url, config.storage.dbName);
  const apps: WorkerApp[] = [];
  const w = {
    config,
    producer,
    db,
    redis,
    async startWorker(gen = generator as import('../../src/generation/text-generator.js').TextGenerator) {
      const app = await startWorkerApp(config, gen, silentLog);
      apps.push(app);
      return app;
    },
    async close() {
      for (const app of apps) await app.stop();
      await producer.close();
      await redis.quit();
      await db.close();
      await cleanup(config);
    },
  };
  worlds.push(w);
  return w;
}
const worlds: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (worlds.length) await worlds.pop()!.close();
});

const msg = (i: number | string, conversationId = 'c1', text = `Hello number ${i}`) => ({
  v: CONTRACT_VERSION as 1,
  messageId: `m-${i}`,
  conversationId,
  userId: 'u1',
  text,
  // Fixed: sending a message again sends the same message.
  createdAt: '2026-12-01T10:00:00Z',
});

describe('handle_messages pipeline on real Redis and a real MongoDB-wire database', () => {
  it('stores a reply with every contract field, then acknowledges the job', async () => {
    const w = await world('fields');
    await w.startWorker();
    const before = Date.now();
    await w.producer.enqueue({ ...msg(1), text: '  你好，我是虚拟助手  ' });
    await followReplies(w.db, ['m-1'], () => undefined, 30_000);
    const doc = await w.db.replies.findOne({ _id: 'm-1' });
    expect(doc).toMatchObject({
      _id: 'm-1',
      conversationId: 'c1',
      userId: 'u1',
      status: 'replied',
      text: expect.any(String),
      model: { id: 'tiny', revision: expect.stringMatching(/^[0-9a-f]{12}$/) },
      tokens: { prompt: expect.any(Number), generated: expect.any(Number) },
      timings: {
        queuedAt: expect.any(Date),
        startedAt: expect.any(Date),
        finishedAt: expect.any(Date),
        inferenceMs: expect.any(Number),
      },
      createdAt: expect.any(Date),
    });
    expect(doc!.tokens.generated).toBeGreaterThan(0);
    expect(doc!.tokens.generated).toBeLessThanOrEqual(8);
    expect(doc!.timings.queuedAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(doc!.timings.startedAt.getTime()).toBeGreaterThanOrEqual(doc!.timings.queuedAt.getTime());
    // Turns are appended right after the replies are stored.
    await expect
      .poll(() => w.db.turns.find({ conversationId: 'c1' }).toArray())
      .toEqual([expect.objectContaining({ _id: 'm-1', user: '你好，我是虚拟助手', assistant: replyText(doc) })]);
    expect(await w.db.conversations.findOne({ _id: 'c1' })).toMatchObject({
      userId: 'u1',
      updatedAt: expect.any(Date),
    });
    const queue = new Queue(w.config.queue.name, { connection: { url: w.config.redis.url } });
    await expect.poll(() => queue.getJobState(messageJobId('m-1'))).toBe('completed');
    await queue.close();
  });

  it('answers the same messageId once, however often it is enqueued or re-delivered', async () => {
    const w = await world('dedupe');
    const counting = new CountingGenerator(generator);
    await w.startWorker(counting);
    await w.producer.enqueue(msg(1));
    await w.producer.enqueue(msg(1));
    await followReplies(w.db, ['m-1'], () => undefined, 30_000);
    const first = await w.db.replies.findOne({ _id: 'm-1' });
    expect(counting.calls.reduce((a, b) => a + b, 0)).toBe(1);
    const queue = new Queue(w.config.queue.name, { connection: { url: w.config.redis.url } });
    await expect.poll(() => queue.getJobState(messageJobId('m-1'))).toBe('completed');
    // The same job delivered again (attemptsMade > 0, as after a failure between storing and acknowledging) finds the
    // mark its first pass left on it and is not generated again.
    const keys = new RedisKeys(w.config.queue.prefix, w.config.queue.name);
    const job = (await queue.getJob(messageJobId('m-1')))!;
    await job.retry('completed');
    await w.redis.hset(`${keys.queue}:${messageJobId('m-1')}`, 'atm', '1');
    // Taken again (its delivery counted by the worker's own lock) and completed again, not generated again.
    await expect.poll(() => queue.getJobState(messageJobId('m-1'))).toBe('completed');
    expect((await queue.getJob(messageJobId('m-1')))!.attemptsMade).toBeGreaterThan(0);
    expect(counting.calls.reduce((a, b) => a + b, 0)).toBe(1);
    // An enqueue after BullMQ trimmed the job record is recognised as the message already answered: nothing is queued.
    await queue.remove(messageJobId('m-1'));
    expect(await queue.getJobState(messageJobId('m-1'))).toBe('unknown');
    await w.producer.enqueue(msg(1));
    expect(await queue.getJobState(messageJobId('m-1'))).toBe('unknown');
    expect(counting.calls.reduce((a, b) => a + b, 0)).toBe(1);
    await queue.close();
    expect(await w.db.replies.countDocuments({})).toBe(1);
    expect(await w.db.replies.findOne({ _id: 'm-1' })).toEqual(first);
    expect(await w.db.turns.countDocuments({ conversationId: 'c1' })).toBe(1);
    // The counters behind the stats count the reply once too.
    expect(
      await new ReplyCounters(w.redis, new RedisKeys(w.config.queue.prefix, w.config.queue.name)).read(),
    ).toMatchObject({
      replied: 1,
      failed: 0,
    });
  });

  it('stores a failed reply with its code for invalid job data, does not retry it, and keeps working', async () => {
    const w = await world('invalid');
    const counting = new CountingGenerator(generator);
    await w.startWorker(counting);
    const queue = new Queue(w.config.queue.name, { connection: { url: w.config.redis.url } });
    await queue.add(MESSAGE_JOB_NAME, { ...msg('bad'), text: '   ' }, { jobId: 'm-bad', attempts: 3 });
    await queue.add(MESSAGE_JOB_NAME, { v: 2, messageId: 'm-v2' }, { jobId: 'm-v2', attempts: 3 });
    await queue.add(MESSAGE_JOB_NAME, { garbage: { $gt: '' } }, { jobId: 'no-id', attempts: 3 });
    await w.producer.enqueue(msg('good'));
    await followReplies(w.db, ['m-bad', 'm-v2', 'no-id', 'm-good'], () => undefined, 30_000);
    expect(await w.db.replies.findOne({ _id: 'm-bad' })).toMatchObject({
      status: 'failed',
      error: { code: 'ERR_CONTRACT', message: expect.stringContaining('text') },
    });
    expect(await w.db.replies.findOne({ _id: 'm-v2' })).toMatchObject({
      status: 'failed',
      error: { code: 'ERR_CONTRACT', message: expect.stringContaining('v must be 1') },
    });
    // Keyed by its job id, which BullMQ keeps unique: no other message's reply can be claimed.
    const noId = await w.db.replies.findOne({ _id: 'no-id' });
    expect(noId).toMatchObject({ status: 'failed', error: { code: 'ERR_CONTRACT' } });
    expect(noId?.conversationId).toBeUndefined();
    expect(await w.db.replies.findOne({ _id: 'm-good' })).toMatchObject({ status: 'replied' });
    await expect.poll(() => queue.getJobState('m-bad')).toBe('failed');
    const failed = await queue.getJob('m-bad');
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toMatch(/ERR_CONTRACT/);
    expect(counting.calls.reduce((a, b) => a + b, 0)).toBe(1);
    await queue.close();
  });

  it('puts 16 waiting jobs through one generate call', async () => {
    const w = await world('batch16', { AVA_BATCH_SIZE: '16', AVA_BATCH_WAIT_MS: '200' });
    await w.producer.enqueueMany(Array.from({ length: 16 }, (_, i) => msg(i, `conv-${i}`)));
    const counting = new CountingGenerator(generator);
    await w.startWorker(counting);
    await followReplies(
      w.db,
      Array.from({ length: 16 }, (_, i) => `m-${i}`),
      () => undefined,
      30_000,
    );
    expect(counting.calls).toEqual([16]);
    expect(await w.db.replies.countDocuments({ status: 'replied' })).toBe(16);
  });

  it('answers each message of a batch exactly as if it were generated alone', async () => {
    const texts = [
      'Hi',
      'Where is my order 1234? It has been two weeks.',
      '你好',
      'Can I pay by card?',
      'ok',
      '请问你们周末营业吗？我想周六过来看看。',
    ];
    const alone = [];
    for (const t of texts) {
      const [one] = await generator.generate([
        { promptIds: generator.tokenizer.encode(`User: ${t}\nAssistant:`), maxNewTokens: 8 },
      ]);
      if (one.finishReason === 'error') throw one.error;
      alone.push(one.text);
    }
    const w = await world('equal', { AVA_BATCH_WAIT_MS: '200' });
    await w.producer.enqueueMany(texts.map((t, i) => msg(i, `conv-${i}`, t)));
    const counting = new CountingGenerator(generator);
    await w.startWorker(counting);
    await followReplies(
      w.db,
      texts.map((_, i) => `m-${i}`),
      () => undefined,
      30_000,
    );
    expect(counting.calls).toEqual([texts.length]);
    // A left-padded batch changes the float sums: equal texts, but after a step within float noise (margins from the engine) either may part.
    const [paths, eos] = [
      await DecoderEngine.load(TINY_MODEL_DIR, { intraOpThreads: 1, maxCachedTokens: 1024 }),
      generator.tokenizer.eosTokenId,
    ];
    const decode = (t: number[]) => generator.tokenizer.decode(t.filter((x) => x !== eos));
    try {
      for (let i = 0; i < texts.length; i++) {
        const stored = replyText(await w.db.replies.findOne({ _id: `m-${i}` })) ?? '';
        const path = await greedyPath(paths, generator.tokenizer.encode(`User: ${texts[i]}\nAssistant:`), 8, eos);
        const [batched, single] = [stored, alone[i]].map((text) => compareGreedy(path, text, decode, 1e-3));
        expect([batched.mismatchAt, single.mismatchAt], texts[i]).toEqual([-1, -1]);
        if (batched.knifeEdgeAt < 0 && single.knifeEdgeAt < 0) expect(stored, texts[i]).toBe(alone[i]);
      }
    } finally {
      await paths.close();
    }
  });

  it('puts the conversation history into the next prompt', async () => {
    const w = await world('history');
    const seen: string[] = [];
    const spy = new CountingGenerator(generator);
    const original = spy.generate.bind(spy);
    spy.generate = async (reqs) => {
      seen.push(...reqs.map((r) => generator.tokenizer.decode(r.promptIds)));
      return original(reqs);
    };
    await w.startWorker(spy);
    await w.producer.enqueue(msg(1, 'c-h', 'My name is Ada.'));
    await followReplies(w.db, ['m-1'], () => undefined, 30_000);
    const first = await w.db.replies.findOne({ _id: 'm-1' });
    await expect.poll(() => w.db.turns.countDocuments({ conversationId: 'c-h' })).toBe(1);
    await w.producer.enqueue(msg(2, 'c-h', 'What is my name?'));
    await followReplies(w.db, ['m-2'], () => undefined, 30_000);
    expect(seen[1]).toBe(`User: My name is Ada.\nAssistant: ${replyText(first)}\nUser: What is my name?\nAssistant:`);
  });

  it('fails a poisoned request alone: the other 15 of its batch run through the model once and stream once', async () => {
    const engine = await EngineGenerator.load({
      id: 'tiny',
      dir: TINY_MODEL_DIR,
      intraOpThreads: 1,
      maxBatchSize: 16,
      maxCachedTokens: 8192,
    });
    try {
      const w = await world('poison', { AVA_BATCH_WAIT_MS: '300', AVA_BATCH_SIZE: '16' });
      await w.producer.enqueueMany(
        Array.from({ length: 16 }, (_, i) => msg(i, `p-${i}`, i === 7 ? 'POISON please' : `Hello number ${i}`)),
      );
      // The poisoned request fails inside the running batch, at its first piece of text.
      const counting = new CountingGenerator(engine, (prompt) => prompt.includes('POISON'));
      const admittedBefore = engine.batcher.stats.admitted;
      await w.startWorker(counting);
      const ids = Array.from({ length: 16 }, (_, i) => `m-${i}`);
      await followReplies(w.db, ids, () => undefined, 30_000);
      expect(await w.db.replies.findOne({ _id: 'm-7' })).toMatchObject({
        status: 'failed',
        error: { code: 'ERR_GENERATION', message: expect.stringContaining('POISON') },
      });
      expect(await w.db.replies.countDocuments({ status: 'replied' })).toBe(15);
      expect(counting.calls).toEqual([16]);
      expect(engine.batcher.stats.admitted - admittedBefore).toBe(16);
      for (const id of ids.filter((x) => x !== 'm-7')) {
        const entries = await w.redis.xrange(
          new RedisKeys(w.config.queue.prefix, w.config.queue.name).replyStream(id),
          '-',
          '+',
        );
        const events = entries.map(
          ([, fields]) => JSON.parse(fields[1]) as { type: string; text?: string; attempt?: string },
        );
        const tokens = events.filter((e) => e.type === 'token');
        expect(new Set(tokens.map((e) => e.attempt)).size, id).toBe(1);
        expect(tokens.map((e) => e.text).join(''), id).toBe(replyText(await w.db.replies.findOne({ _id: id })));
        expect(
          events.filter((e) => e.type === 'done'),
          id,
        ).toHaveLength(1);
      }
    } finally {
      await engine.close();
    }
  });

  it('retries with exponential backoff while the database is unreachable, then stores every reply once', async () => {
    const proxy = await TcpProxy.start(Number(new URL(MONGO_URL).port || 27017));
    try {
      const w = await world('dbdown', {
        AVA_MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        AVA_MONGO_TIMEOUT_MS: '500',
        AVA_BATCH_WAIT_MS: '50',
      });
      const producer = new MessageProducer(
        new Redis(w.config.redis.url, { maxRetriesPerRequest: null }),
        new RedisKeys(w.config.queue.prefix, w.config.queue.name),
        {
          attempts: 10,
          backoffMs: 100,
        },
      );
      await w.startWorker();
      await proxy.cut();
      await producer.enqueueMany(Array.from({ length: 6 }, (_, i) => msg(i, `c-${i}`)));
      await sleep(2_500);
      await proxy.restore();
      await followReplies(
        w.db,
        Array.from({ length: 6 }, (_, i) => `m-${i}`),
        () => undefined,
        60_000,
      );
      expect(await w.db.replies.countDocuments({})).toBe(6);
      expect(await w.db.replies.countDocuments({ status: 'replied' })).toBe(6);
      const queue = new Queue(w.config.queue.name, { connection: { url: w.config.redis.url } });
      await expect.poll(() => queue.getJobCounts('completed'), { timeout: 10_000 }).toEqual({ completed: 6 });
      const attempts = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => (await queue.getJob(messageJobId(`m-${i}`)))!.attemptsMade),
      );
      expect(Math.max(...attempts), `attempts: ${attempts}`).toBeGreaterThanOrEqual(2);
      await queue.close();
      await producer.close();
    } finally {
      await proxy.close();
    }
  });

  it('gives every message a stored reply when the database is down longer than the whole retry budget', async () => {
    const proxy = await TcpProxy.start(Number(new URL(MONGO_URL).port || 27017));
    try {
      const w = await world('exhausted', {
        AVA_MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        AVA_MONGO_TIMEOUT_MS: '300',
        AVA_BATCH_WAIT_MS: '50',
        AVA_RECONCILE_INTERVAL_MS: '300',
      });
      const producer = new MessageProducer(
        new Redis(w.config.redis.url, { maxRetriesPerRequest: null }),
        new RedisKeys(w.config.queue.prefix, w.config.queue.name),
        {
          attempts: 2,
          backoffMs: 100,
        },
      );
      await w.startWorker();
      await producer.enqueueMany(Array.from({ length: 3 }, (_, i) => msg(`before-${i}`, `c-${i}`)));
      await followReplies(w.db, ['m-before-0', 'm-before-1', 'm-before-2'], () => undefined, 30_000);
      // A reply is visible before its batch has written the turns and acknowledged the jobs: cutting the database then
      // would fail that batch too. Wait until its jobs are completed.
      const queue = new Queue(w.config.queue.name, { connection: { url: w.config.redis.url } });
      await expect.poll(() => queue.getJobCounts('completed'), { timeout: 10_000 }).toEqual({ completed: 3 });
      await proxy.cut();
      await producer.enqueueMany(Array.from({ length: 6 }, (_, i) => msg(`during-${i}`, `c-${i}`)));
      // Both attempts of every job fail while the database is away: they end in BullMQ's failed set.
      await expect.poll(() => queue.getJobCounts('failed'), { timeout: 30_000, interval: 200 }).toEqual({ failed: 6 });
      await proxy.restore();
      const during = Array.from({ length: 6 }, (_, i) => `m-during-${i}`);
      await followReplies(w.db, during, () => undefined, 30_000);
      for (const id of during) {
        expect(await w.db.replies.findOne({ _id: id }), id).toMatchObject({
          status: 'failed',
          conversationId: expect.any(String),
          error: {
            code: 'ERR_RETRIES_EXHAUSTED',
            message: expect.stringMatching(/gave up after 2 attempts; last error: ERR_STORAGE/),
          },
        });
      }
      // Their places in their conversations are released just after their failed replies are stored, so no next
      // message waits on them.
      const keys = new RedisKeys(w.config.queue.prefix, w.config.queue.name);
      const placed = () => Promise.all(during.map((id, i) => w.redis.zscore(keys.conversation(`c-${i}`).pending, id)));
      await expect.poll(placed, { timeout: 5_000 }).toEqual(during.map(() => null));
      // Exactly one reply per message, also after more reconciler passes.
      await sleep(1_000);
      expect(await w.db.replies.countDocuments({})).toBe(9);
      expect(await w.db.replies.countDocuments({ status: 'replied' })).toBe(3);
      expect(
        await new ReplyCounters(w.redis, new RedisKeys(w.config.queue.prefix, w.config.queue.name)).read(),
      ).toMatchObject({
        replied: 3,
        failed: 6,
      });
      await queue.close();
      await producer.close();
    } finally {
      await proxy.close();
    }
  });
});
