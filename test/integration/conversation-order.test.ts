import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { PARK_MS } from '../../src/pipeline/worker-loop.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { Database } from '../../src/storage/database.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from '../helpers/services.js';

// Batches of 8 taken by two workers: the five messages of one conversation land in one batch and across both.
const config = testConfig(isolatedNames('order'), {
  AVA_BATCH_SIZE: '8',
  AVA_BATCH_WAIT_MS: '50',
  AVA_MAX_NEW_TOKENS: '4',
});
let engine: EngineGenerator;
let counting: CountingGenerator;
let redis: Redis;
let producer: MessageProducer;
let db: Database;
const workers: WorkerApp[] = [];

beforeAll(async () => {
  engine = await EngineGenerator.load({
    id: 'tiny',
    dir: TINY_MODEL_DIR,
    intraOpThreads: 1,
    maxBatchSize: 32,
    maxCachedTokens: 16_384,
  });
  counting = new CountingGenerator(engine);
  redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
  });
  db = await Database.connect(config.storage.url, config.storage.dbName);
}, 120_000);
afterAll(async () => {
  for (const w of workers) await w.stop();
  await producer.close();
  redis.disconnect();
  await db.close();
  await engine.close();
  await cleanup(config);
});

const message = (messageId: string, conversationId: string, text: string) => ({
  v: 1 as const,
  messageId,
  conversationId,
  userId: `u-${conversationId}`,
  text,
});

it('answers 5 messages of one conversation sent at once in order, each prompt holding the turns before it, beside 50 others on 2 workers', async () => {
  workers.push(await startWorkerApp(config, counting, silentLog), await startWorkerApp(config, counting, silentLog));
  // Numeric ids that sort differently as text ('10' < '8'), and all five enqueued within a millisecond or two: only
  // their places in the conversation can order their turns.
  const steps = Array.from({ length: 5 }, (_, k) =>
    message(String(k + 8), 'story', `Step ${k + 1} of the story, please.`),
  );
  const others = Array.from({ length: 50 }, (_, i) =>
    message(`other-${i}`, `other-${i}`, `An unrelated question number ${i}.`),
  );
  // Interleaved in one bulk enqueue, as one upstream system sends them.
  const all = others.flatMap((o, i) => (i % 10 === 0 && steps[i / 10] ? [steps[i / 10], o] : [o]));
  expect(all).toHaveLength(55);
  const t0 = performance.now();
  await producer.enqueueMany(all);
  await followReplies(
    db,
    all.map((m) => m.messageId),
    () => undefined,
    120_000,
  );
  const seconds = (performance.now() - t0) / 1000;
  console.info(`5 ordered steps among 55 messages answered in ${seconds.toFixed(1)} s`);
  // Each later step is parked and woken when the one before it is released (0.9 s for all here on a 2-core VM); one
  // lost wake-up would leave a step parked for the whole fallback period, twice the bound, which is itself over 30
  // times what the steps take.
  expect(PARK_MS).toBeGreaterThanOrEqual(60_000);
  expect(seconds).toBeLessThan(PARK_MS / 2 / 1000);

  for (const [k, step] of steps.entries()) {
    const prompts = counting.prompts.filter((p) => p.endsWith(`User: ${step.text}\nAssistant:`));
    expect(prompts, step.messageId).toHaveLength(1);
    // Every earlier step is in the prompt as a turn, in order, and no later one.
    const positions = steps.map((s) => prompts[0].indexOf(`User: ${s.text}`));
    expect(
      positions.slice(0, k + 1).every((p, i, a) => p >= 0 && (i === 0 || p > a[i - 1])),
      `${step.messageId}: ${prompts[0]}`,
    ).toBe(true);
    expect(positions.slice(k + 1).every((p) => p < 0)).toBe(true);
  }
  // The turns were written in the order the messages were accepted, and each conversation's set is empty again. A
  // reply is stored before its turn is written and its place released, so both are waited for.
  const keys = new RedisKeys(config.queue.prefix, config.queue.name);
  await expect.poll(() => redis.exists(keys.conversation('story').pending), { timeout: 10_000 }).toBe(0);
  const turns = await db.turns.find({ conversationId: 'story' }).sort({ at: 1, seq: 1 }).toArray();
  expect(turns.map((t) => t._id)).toEqual(steps.map((s) => s.messageId));
  // Each message was generated once and stored once.
  for (const m of all)
    expect(
      counting.prompts.filter((p) => p.endsWith(`User: ${m.text}\nAssistant:`)),
      m.messageId,
    ).toHaveLength(1);
  expect(await db.replies.countDocuments({})).toBe(55);
});
