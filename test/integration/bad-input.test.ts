import { Queue } from 'bullmq';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { MESSAGE_JOB_NAME } from '../../src/contract/message-contract.js';
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { startWorkerApp, type WorkerApp } from '../../src/pipeline/worker-app.js';
import { Database } from '../../src/storage/database.js';
import { buildApiServer } from '../../src/api/api-server.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { ReplyStreamReader } from '../../src/queue/reply-stream-reader.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { cleanup, isolatedNames, silentLog, testConfig } from '../helpers/services.js';
import { replyErrorCode } from '../helpers/reply-text.js';

const ok = (id: string) => ({ v: 1, messageId: id, conversationId: 'c-bad', userId: 'u', text: `good message ${id}` });

/** Raw job data a producer that skips validation could put on the queue, with the reply each must get. */
const CATALOGUE: Array<{
  kind: string;
  data: (id: string) => unknown;
  expect: 'failed' | 'replied';
  keyedByJob?: boolean;
  apiAccepts?: boolean;
}> = [
  { kind: 'empty text', data: (id) => ({ ...ok(id), text: '' }), expect: 'failed' },
  { kind: 'whitespace text', data: (id) => ({ ...ok(id), text: ' \n\t ' }), expect: 'failed' },
  { kind: '8,001 characters', data: (id) => ({ ...ok(id), text: 'x'.repeat(8001) }), expect: 'failed' },
  { kind: '1 MB of text', data: (id) => ({ ...ok(id), text: 'y'.repeat(1_000_000) }), expect: 'failed' },
  { kind: 'lone surrogate', data: (id) => ({ ...ok(id), text: 'a\uD800b' }), expect: 'failed' },
  { kind: 'NUL', data: (id) => ({ ...ok(id), text: 'a\u0000b' }), expect: 'failed' },
  { kind: 'control character', data: (id) => ({ ...ok(id), text: 'bell\u0007' }), expect: 'failed' },
  { kind: 'wrong version', data: (id) => ({ ...ok(id), v: 2 }), expect: 'failed' },
  {
    kind: 'missing version',
    data: (id) => {
      const { v: _v, ...rest } = ok(id);
      return rest;
    },
    expect: 'failed',
  },
  { kind: 'version as a string', data: (id) => ({ ...ok(id), v: '1' }), expect: 'failed' },
  { kind: 'extra field', data: (id) => ({ ...ok(id), role: 'admin' }), expect: 'failed' },
  {
    kind: 'missing text',
    data: (id) => {
      const { text: _t, ...rest } = ok(id);
      return rest;
    },
    expect: 'failed',
  },
  {
    kind: 'missing conversationId',
    data: (id) => {
      const { conversationId: _c, ...rest } = ok(id);
      return rest;
    },
    expect: 'failed',
  },
  {
    kind: '$-prefixed messageId',
    data: (id) => ({ ...ok(id), messageId: '$where' }),
    expect: 'failed',
    keyedByJob: true,
  },
  {
    kind: 'operator object as messageId',
    data: (id) => ({ ...ok(id), messageId: { $ne: null } }),
    expect: 'failed',
    keyedByJob: true,
  },
  { kind: 'space in conversationId', data: (id) => ({ ...ok(id), conversationId: 'a b' }), expect: 'failed' },
  { kind: '129-character userId', data: (id) => ({ ...ok(id), userId: 'u'.repeat(129) }), expect: 'failed' },
  { kind: 'number as text', data: (id) => ({ ...ok(id), text: 42 }), expect: 'failed' },
  { kind: 'array as text', data: (id) => ({ ...ok(id), text: ['a'] }), expect: 'failed' },
  { kind: 'operator object as text', data: (id) => ({ ...ok(id), text: { $gt: '' } }), expect: 'failed' },
  { kind: '$ metadata key', data: (id) => ({ ...ok(id), metadata: { $set: { admin: true } } }), expect: 'failed' },
  { kind: 'dotted metadata key', data: (id) => ({ ...ok(id), metadata: { 'a.b': 1 } }), expect: 'failed' },
  {
    kind: '__proto__ metadata key',
    data: (id) => ({ ...ok(id), metadata: JSON.parse('{"__proto__": {"polluted": true}}') }),
    expect: 'failed',
  },
  { kind: 'constructor metadata key', data: (id) => ({ ...ok(id), metadata: { constructor: 'x' } }), expect: 'failed' },
  { kind: 'nested metadata value', data: (id) => ({ ...ok(id), metadata: { a: { b: 1 } } }), expect: 'failed' },
  {
    kind: '33 metadata keys',
    data: (id) => ({ ...ok(id), metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) }),
    expect: 'failed',
  },
  {
    kind: '10,000 metadata keys',
    data: (id) => ({ ...ok(id), metadata: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])) }),
    expect: 'failed',
  },
  {
    kind: 'NaN metadata value (null after JSON)',
    data: (id) => ({ ...ok(id), metadata: { score: Number.NaN } }),
    expect: 'failed',
  },
  { kind: 'invalid createdAt', data: (id) => ({ ...ok(id), createdAt: '31/12/2026' }), expect: 'failed' },
  { kind: 'null data', data: () => null, expect: 'failed', keyedByJob: true },
  // The API takes an array of messages by design; as raw job data it is malformed.
  { kind: 'array data', data: (id) => [ok(id)], expect: 'failed', keyedByJob: true, apiAccepts: true },
  { kind: 'string data', data: () => 'hello', expect: 'failed', keyedByJob: true },
  { kind: 'right-to-left override', data: (id) => ({ ...ok(id), text: '\u202Egnp.exe please' }), expect: 'replied' },
  { kind: 'emoji and Chinese', data: (id) => ({ ...ok(id), text: '你好 👋🏽 我的订单在哪里？' }), expect: 'replied' },
];

const config = testConfig(isolatedNames('badinput'), { AVA_BATCH_WAIT_MS: '100' });
let generator: EngineGenerator;
let app: WorkerApp;
let db: Database;
let queue: Queue;
let redis: Redis;
beforeAll(async () => {
  generator = await EngineGenerator.load({
    id: 'tiny',
    dir: TINY_MODEL_DIR,
    intraOpThreads: 1,
    maxBatchSize: 16,
    maxCachedTokens: 8192,
  });
  db = await Database.connect(config.storage.url, config.storage.dbName);
  redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  queue = new Queue(config.queue.name, { connection: redis, prefix: config.queue.prefix });
});
afterAll(async () => {
  await app?.stop();
  await generator.close();
  await queue.close();
  redis.disconnect();
  await db.close();
  await cleanup(config);
});

it(`gives each of ${CATALOGUE.length} kinds of bad input its documented outcome without affecting good messages`, async () => {
  expect(CATALOGUE.filter((c) => c.expect === 'failed').length).toBeGreaterThanOrEqual(30);
  // Bad and good jobs interleaved, so that they share batches.
  const jobs = CATALOGUE.flatMap((c, i) => [
    { name: MESSAGE_JOB_NAME, data: c.data(`bad-${i}`), opts: { jobId: `bad-${i}`, attempts: 3 } },
    { name: MESSAGE_JOB_NAME, data: ok(`good-${i}`), opts: { jobId: `good-${i}`, attempts: 3 } },
  ]);
  await queue.addBulk(jobs);
  app = await startWorkerApp(config, generator, silentLog);
  const replyId = (i: number) => `bad-${i}`;
  const ids = CATALOGUE.flatMap((_, i) => [replyId(i), `good-${i}`]);
  await followReplies(db, ids, () => undefined, 60_000);

  for (let i = 0; i < CATALOGUE.length; i++) {
    const doc = await db.replies.findOne({ _id: replyId(i) });
    expect(doc?.status, CATALOGUE[i].kind).toBe(CATALOGUE[i].expect);
    if (CATALOGUE[i].expect === 'failed') expect(replyErrorCode(doc), CATALOGUE[i].kind).toBe('ERR_CONTRACT');
    expect((await db.replies.findOne({ _id: `good-${i}` }))?.status).toBe('replied');
  }
  // Exactly one reply per job and nothing else; no prototype was polluted.
  expect(await db.replies.countDocuments({})).toBe(ids.length);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  await expect
    .poll(() => queue.getJobCounts('failed', 'completed', 'active', 'wait'))
    .toEqual({
      failed: CATALOGUE.filter((c) => c.expect === 'failed').length,
      completed: ids.length - CATALOGUE.filter((c) => c.expect === 'failed').length,
      active: 0,
      wait: 0,
    });
});

it('refuses jobs whose data names another message or whose id is unusable, touching no reply, each failure visible', async () => {
  const before = await db.replies.findOne({ _id: 'good-0' });
  expect(before?.status).toBe('replied');
  await queue.addBulk([
    { name: MESSAGE_JOB_NAME, data: { ...ok('good-0'), text: 'overwrite me' }, opts: { jobId: 'claim-1' } },
    { name: MESSAGE_JOB_NAME, data: ok('fresh-1'), opts: { jobId: 'claim-2' } },
    { name: MESSAGE_JOB_NAME, data: null, opts: { jobId: 'bad id/1' } },
    { name: MESSAGE_JOB_NAME, data: 'x', opts: { jobId: 'bad id/2' } },
    // No job id at all: BullMQ numbers them, and each gets a failed reply under its own number.
    { name: MESSAGE_JOB_NAME, data: null },
    { name: MESSAGE_JOB_NAME, data: null },
    { name: MESSAGE_JOB_NAME, data: ok('after-claims'), opts: { jobId: 'after-claims' } },
  ]);
  await followReplies(db, ['after-claims'], () => undefined, 30_000);
  const failedJobs = async () => Object.fromEntries((await queue.getFailed()).map((j) => [j.id, j.failedReason]));
  await expect.poll(async () => Object.keys(await failedJobs()).filter((id) => !/^bad-\d+$/.test(id)).length).toBe(6);
  const reasons = await failedJobs();
  expect(reasons['claim-1']).toMatch(
    /^ERR_JOB_ID: data.messageId "good-0" differs from the message the job id "claim-1" stands for/,
  );
  expect(reasons['claim-2']).toMatch(/^ERR_JOB_ID: data.messageId "fresh-1" differs/);
  expect(reasons['bad id/1']).toMatch(/^ERR_JOB_ID: job id "bad id\/1" is not usable/);
  expect(reasons['bad id/2']).toMatch(/^ERR_JOB_ID: job id "bad id\/2" is not usable/);
  // The claimed message's reply is untouched; nothing was stored under the claims or the unusable ids.
  expect(await db.replies.findOne({ _id: 'good-0' })).toEqual(before);
  expect(
    await db.replies.countDocuments({
      _id: { $in: ['claim-1', 'claim-2', 'fresh-1', 'bad id/1', 'bad id/2', 'job-invalid'] },
    }),
  ).toBe(0);
  const numbered = Object.keys(reasons).filter((id) => /^\d+$/.test(id));
  expect(numbered).toHaveLength(2);
  for (const id of numbered)
    expect(await db.replies.findOne({ _id: id })).toMatchObject({ status: 'failed', error: { code: 'ERR_CONTRACT' } });
});

it('gives the same catalogue sent through the HTTP API a 4xx naming the problem, and stores nothing for it', async () => {
  const TOKEN = 'catalogue-token-0123456789';
  const subscriber = redis.duplicate();
  const keys = new RedisKeys(config.queue.prefix, config.queue.name);
  const producer = new MessageProducer(redis, keys, { attempts: 3, backoffMs: 100 });
  const api = await buildApiServer({
    config: {
      ...config,
      api: { ...config.api, tokens: [{ name: 'cat', token: TOKEN, scopes: ['enqueue', 'read'], tenant: 'default' }] },
    },
    keys,
    producer,
    database: db,
    redis,
    streams: new ReplyStreamReader(redis, subscriber, keys),
    log: silentLog,
  });
  try {
    for (const [i, c] of CATALOGUE.entries()) {
      const id = `api-bad-${i}`;
      const res = await api.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        payload: JSON.stringify(c.data(id)),
      });
      if (c.expect === 'replied' || c.apiAccepts) {
        expect(res.statusCode, c.kind).toBe(202);
        continue;
      }
      // A message larger than AVA_API_MAX_MESSAGE_BYTES is refused for its size before it is read: 413.
      const large = Buffer.byteLength(JSON.stringify(c.data(id))) > config.api.maxMessageBytes;
      expect(res.statusCode, c.kind).toBe(large ? 413 : 400);
      expect(res.json().error.message, c.kind).toMatch(/\w+/);
      expect(res.body, c.kind).not.toMatch(/at .*\.(ts|js):\d+/);
      expect(await db.replies.countDocuments({ _id: id }), c.kind).toBe(0);
      expect(await queue.getJob(id), c.kind).toBeUndefined();
    }
  } finally {
    await api.close();
    await producer.close();
    subscriber.disconnect();
  }
});
