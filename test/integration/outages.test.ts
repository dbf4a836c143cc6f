import { setTimeout as sleep } from 'node:timers/promises';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { startWorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { connectRedis } from '../../src/queue/redis-connection.js';
import { Database } from '../../src/storage/database.js';
import { startApiWorld } from '../helpers/api-world.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { isolatedNames, silentLog, testConfig } from '../helpers/services.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { CountingGenerator } from '../helpers/counting-generator.js';

const TOKEN = 'outage-token-0123456789abcdef';
const as = { authorization: `Bearer ${TOKEN}` };
/** The request paths' Redis command timeout in these tests. */
const TIMEOUT_MS = 1_000;
/**
 * A bound: five times what a path should take. A path that hangs on the outage fails it; a loaded 2-core machine
 * (event-loop delay, a reconnect attempt in flight) does not.
 */
const within = (expectedMs: number) => 5 * expectedMs;

/** Short job locks, so that jobs a dead connection left active are delivered again within seconds. */
const FAST_LOCKS = { AVA_LOCK_DURATION_MS: '5000', AVA_STALLED_INTERVAL_MS: '2000' };
/** The worker's shutdown grace in these tests. */
const GRACE_MS = 3_000;

let own: OwnRedis;
let world: Awaited<ReturnType<typeof startApiWorld>>;
/** Every prompt the API world's worker gave its model: answers are counted by generations, not by ids. */
let counting: CountingGenerator;
const textOf = (id: string) => `I like turtles #${id}.`;
const msg = (id: string) => ({
  v: 1 as const,
  messageId: id,
  conversationId: `out-${id}`,
  userId: 'u-out',
  text: textOf(id),
});
/** How many times a message went to the model. */
const generations = (c: CountingGenerator, id: string) => c.prompts.filter((p) => p.includes(textOf(id))).length;

beforeAll(async () => {
  own = await OwnRedis.start();
  world = await startApiWorld(
    'outage',
    {
      AVA_REDIS_URL: own.url,
      AVA_API_TOKENS: `crm:${TOKEN}:enqueue+read:default`,
      AVA_REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS),
      AVA_MAX_NEW_TOKENS: '2',
      ...FAST_LOCKS,
    },
    (g) => (counting = new CountingGenerator(g)),
  );
}, 120_000);
afterAll(async () => {
  own?.resume();
  await world?.close();
  await own?.close();
});

/** Runs a request and returns its response with the time it took. */
async function timed(opts: InjectOptions) {
  const t0 = performance.now();
  const res = await world.api.inject(opts);
  return { res, ms: performance.now() - t0 };
}

describe('the API while Redis is away', () => {
  it('paused (SIGSTOP): enqueue answers 503 with Retry-After, long-polls keep their wait, /readyz says redis: false, each within its bound; then everything accepted is answered', async () => {
    const before = await world.api.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: msg('before-pause'),
      headers: as,
    });
    expect(before.statusCode).toBe(202);
    await followReplies(world.database, ['before-pause'], () => undefined, 30_000);
    own.pause();
    try {
      const enqueue = await timed({ method: 'POST', url: '/v1/messages', payload: msg('during-pause'), headers: as });
      console.info(`Redis paused: enqueue answered ${enqueue.res.statusCode} in ${enqueue.ms.toFixed(0)} ms`);
      expect(enqueue.res.statusCode, enqueue.res.body).toBe(503);
      expect(enqueue.res.headers['retry-after']).toBe('2');
      expect(enqueue.res.json().error).toMatchObject({
        code: 'ERR_SERVICE_UNAVAILABLE',
        message: expect.stringContaining('Redis'),
      });
      expect(enqueue.ms).toBeLessThan(within(TIMEOUT_MS));
      const poll = await timed({ url: '/v1/messages/never-sent?wait=2000', headers: as });
      console.info(`Redis paused: a 2 s long-poll answered ${poll.res.statusCode} in ${poll.ms.toFixed(0)} ms`);
      expect(poll.res.statusCode).toBeGreaterThanOrEqual(400);
      expect(poll.ms).toBeLessThan(within(2_000 + TIMEOUT_MS));
      const ready = await timed({ url: '/readyz' });
      console.info(`Redis paused: /readyz answered ${ready.res.statusCode} in ${ready.ms.toFixed(0)} ms`);
      expect(ready.res.statusCode).toBe(503);
      expect(ready.res.json().checks).toMatchObject({ redis: false, database: true });
      expect(ready.ms).toBeLessThan(within(TIMEOUT_MS));
    } finally {
      own.resume();
    }
    // Redis back: the API and the worker go on by themselves.
    await expect
      .poll(
        async () =>
          (await world.api.inject({ method: 'POST', url: '/v1/messages', payload: msg('after-pause'), headers: as }))
            .statusCode,
        { timeout: 15_000, interval: 250 },
      )
      .toBe(202);
    await followReplies(world.database, ['after-pause'], () => undefined, 30_000);
    // The 503 promised nothing: the enqueue may still have reached Redis (it sat in the socket while Redis was
    // frozen). A client retries with the same messageId, which is idempotent; either way it is answered at most once.
    expect(generations(counting, 'during-pause')).toBeLessThanOrEqual(1);
    expect(generations(counting, 'after-pause')).toBe(1);
  });

  it('killed: requests answer 503 at once; restarted: the worker reconnects by itself and nothing accepted is lost', async () => {
    const accepted = ['k-1', 'k-2', 'k-3'];
    expect(
      (await world.api.inject({ method: 'POST', url: '/v1/messages', payload: accepted.map(msg), headers: as }))
        .statusCode,
    ).toBe(202);
    await own.kill();
    const enqueue = await timed({ method: 'POST', url: '/v1/messages', payload: msg('during-kill'), headers: as });
    console.info(`Redis killed: enqueue answered ${enqueue.res.statusCode} in ${enqueue.ms.toFixed(0)} ms`);
    expect(enqueue.res.statusCode).toBe(503);
    expect(enqueue.ms).toBeLessThan(within(TIMEOUT_MS));
    // The OpenAI-compatible route says the same in OpenAI's error object: retry, nothing was promised.
    const chat = await timed({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: { model: 'tiny', messages: [{ role: 'user', content: 'where is my order?' }] },
      headers: as,
    });
    expect(chat.res.statusCode, chat.res.body).toBe(503);
    expect(chat.res.headers['retry-after']).toBe('2');
    expect(chat.res.json()).toEqual({
      error: {
        message: expect.stringContaining('Redis'),
        type: 'server_error',
        param: null,
        code: 'ERR_SERVICE_UNAVAILABLE',
      },
    });
    expect(chat.ms).toBeLessThan(within(TIMEOUT_MS));
    const ready = await timed({ url: '/readyz' });
    expect(ready.res.json().checks.redis).toBe(false);
    expect(ready.ms).toBeLessThan(within(TIMEOUT_MS));
    await sleep(500);
    await own.up();
    const restarted = performance.now();
    // The append-only file (fsync always) kept the accepted messages; the worker answers each once.
    await followReplies(world.database, accepted, () => undefined, 60_000);
    console.info(
      `Redis killed and restarted: the worker answered the ${accepted.length} accepted messages ${(performance.now() - restarted).toFixed(0)} ms after the restart`,
    );
    for (const id of accepted) expect(generations(counting, id), id).toBe(1);
  });
});

describe('a worker while Redis is away', () => {
  it('stops within its grace period with Redis paused mid-batch; a new worker answers every accepted message once', async () => {
    const config = testConfig(isolatedNames('outage_worker'), {
      AVA_REDIS_URL: own.url,
      AVA_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      AVA_MAX_NEW_TOKENS: '24',
      ...FAST_LOCKS,
    });
    const engine = await EngineGenerator.load({
      id: 'tiny',
      dir: TINY_MODEL_DIR,
      intraOpThreads: 1,
      maxBatchSize: 16,
      maxCachedTokens: 8192,
    });
    const generator = new CountingGenerator(engine);
    const redis = await connectRedis({ url: own.url });
    const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
      attempts: 3,
      backoffMs: 100,
    });
    const database = await Database.connect(config.storage.url, config.storage.dbName);
    const ids = Array.from({ length: 24 }, (_, i) => `w-${i}`);
    try {
      const first = await startWorkerApp(config, generator, silentLog);
      await producer.enqueueMany(ids.map(msg));
      // Paused while the worker has a batch in flight.
      await expect.poll(() => engine.batcher.load.running, { timeout: 30_000, interval: 5 }).toBeGreaterThan(0);
      own.pause();
      const t0 = performance.now();
      await first.stop();
      const ms = performance.now() - t0;
      console.info(`Redis paused: the worker stopped in ${ms.toFixed(0)} ms (grace ${GRACE_MS} ms)`);
      expect(ms).toBeLessThan(within(GRACE_MS));
      own.resume();
      const second = await startWorkerApp(config, generator, silentLog);
      try {
        await followReplies(database, ids, () => undefined, 60_000);
        // Every message went to the model, and a second time at most: only the first worker's batches cut short by
        // the outage are generated again, by the second.
        const counts = ids.map((id) => generations(generator, id));
        expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...counts)).toBeLessThanOrEqual(2);
      } finally {
        await second.stop();
      }
    } finally {
      own.resume();
      await producer.close();
      redis.disconnect();
      await database.close();
      await engine.close();
    }
  });
});
