import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { QueueKeys } from 'bullmq';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { ID_PATTERN } from '../../src/contract/message-contract.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { startApiWorld } from '../helpers/api-world.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { ROOT } from '../helpers/paths.js';

const WRITER = 'ids-writer-0123456789abcdef';
const as = { authorization: `Bearer ${WRITER}` };
let world: Awaited<ReturnType<typeof startApiWorld>>;
let counting: CountingGenerator;
let nonce = 0;
/** Every id sent so far: a repeated id is a no-op by design, so each test sends ids of its own. */
const sent = new Set<string>();
/** A message the sample intents send to the model, tagged so that its prompts can be counted. */
const message = (messageId: string) => ({
  v: 1,
  messageId,
  conversationId: `ids-${++nonce}`,
  userId: 'u-ids',
  text: `I like turtles #${nonce}.`,
});

/** Every word BullMQ names a key with, read from its own source: QueueKeys and the suffixes its Lua scripts append. */
function bullmqWords(): string[] {
  const words = new Set(Object.keys(new QueueKeys().getKeys('q')).filter(Boolean));
  const commands = path.join(ROOT, 'node_modules', 'bullmq', 'dist', 'esm', 'commands');
  for (const file of readdirSync(commands).filter((f) => f.endsWith('.lua'))) {
    for (const m of readFileSync(path.join(commands, file), 'utf8').matchAll(/\.\.\s*["']:?([a-z][a-z:-]*)["']/g)) {
      words.add(m[1]);
      for (const part of m[1].split(':')) words.add(part);
    }
  }
  for (const extra of ['logs', 'lock', 'waiting-children', 'de', 'metrics']) words.add(extra);
  return [...words].filter((w) => ID_PATTERN.test(w));
}

/** AVA's own key names, past and present, and the segments of its namespace. */
const PRODUCT_WORDS = [
  'ava',
  'ava-workers',
  'reply-counts',
  'recent-latencies',
  'reconciled-until',
  'reconciler-lock',
  'stream',
  'history',
  'workers',
  'conversation',
  'rate',
  'ava:workers',
  'ava:stream:x',
];
/** What upstream systems use: numbers, channel prefixes, dots and dashes, and the longest id the contract takes. */
const EVERYDAY = [
  '42',
  '0',
  '007',
  '1234567890123',
  '9007199254740993',
  'whatsapp:12345',
  'sms:+1',
  'a:b:c',
  ':',
  '::',
  'x:',
  ':x',
  '.',
  '..',
  'a.b',
  '-',
  '--',
  '-1',
  '1e9',
  '_',
  'm~x',
  'A'.repeat(128),
].filter((id) => ID_PATTERN.test(id));

beforeAll(async () => {
  world = await startApiWorld(
    'ids',
    { AVA_API_TOKENS: `crm:${WRITER}:enqueue+read:default`, AVA_API_RATE_LIMIT: '100000', AVA_MAX_NEW_TOKENS: '2' },
    (g) => (counting = new CountingGenerator(g)),
  );
}, 120_000);
afterAll(async () => world?.close());

/** Posts `ids` in one bulk request, then checks that each is answered exactly once: one reply, one generation. */
async function expectAnsweredOnce(ids: readonly string[]): Promise<void> {
  for (const id of ids) sent.add(id);
  const bodies = ids.map(message);
  const res = await world.api.inject({ method: 'POST', url: '/v1/messages', payload: bodies, headers: as });
  expect(res.statusCode, res.body).toBe(202);
  expect(res.json()).toEqual(ids.map((messageId) => ({ messageId, status: 'queued' })));
  const seen = new Map<string, number>();
  await followReplies(
    world.database,
    [...new Set(ids)],
    (doc) => seen.set(doc._id, (seen.get(doc._id) ?? 0) + 1),
    120_000,
  );
  for (const [i, id] of ids.entries()) {
    const docs = await world.database.replies.find({ _id: id }).toArray();
    expect(
      docs.map((d) => d.status),
      id,
    ).toEqual(['replied']);
    // One generation for the message: its tagged text is in exactly one prompt the model was given.
    const tag = bodies[i].text;
    expect(counting.prompts.filter((p) => p.includes(tag)).length, `generations of ${id}`).toBe(1);
  }
}

describe('message ids: safe by construction, whatever the contract accepts', () => {
  it('accepts and answers once every word BullMQ and AVA use for a key, and everyday ids; the queue keeps working', async () => {
    const words = bullmqWords();
    expect(words).toEqual(
      expect.arrayContaining([
        'wait',
        'active',
        'paused',
        'stalled',
        'delayed',
        'prioritized',
        'limiter',
        'marker',
        'repeat',
        'meta',
        'events',
        'id',
        'logs',
        'lock',
      ]),
    );
    const ids = [...new Set([...words, ...PRODUCT_WORDS, ...EVERYDAY])];
    await expectAnsweredOnce(ids);
    // BullMQ's own keys kept their types: the queue still takes and answers an ordinary message.
    const keys = new RedisKeys(world.config.queue.prefix, world.config.queue.name);
    expect(await world.redis.type(`${keys.queue}:wait`)).toMatch(/^(list|none)$/);
    expect(await world.redis.type(`${keys.queue}:meta`)).toMatch(/^(hash|none)$/);
    await expectAnsweredOnce(['ordinary-after-keys']);
  });

  it('refuses an id the contract does not take with a 400 naming messageId, and a bad item of a bulk POST by its index', async () => {
    for (const bad of ['A'.repeat(129), 'a b', 'a/b', '', 'ü', '$where', 'a~b']) {
      const res = await world.api.inject({
        method: 'POST',
        url: '/v1/messages',
        payload: { ...message('x'), messageId: bad },
        headers: as,
      });
      expect(res.statusCode, bad).toBe(400);
      expect(
        res.json().error.issues.map((i: { path: string }) => i.path),
        bad,
      ).toEqual(['messageId']);
    }
    const bulk = await world.api.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: [message('fine-1'), { ...message('x'), messageId: 'a b' }, message('fine-2')],
      headers: as,
    });
    expect(bulk.statusCode).toBe(400);
    expect(bulk.json().error.issues.map((i: { path: string }) => i.path)).toEqual(['[1].messageId']);
    expect(await world.database.replies.countDocuments({ _id: { $in: ['fine-1', 'fine-2'] } })).toBe(0);
  });

  it('answers once any id drawn from the contract’s rule (property-based, through the real API and queue)', async () => {
    const drawn = fc.sample(fc.stringMatching(ID_PATTERN), { numRuns: 40, seed: 20261204 });
    const fresh = [...new Set(drawn)].filter((id) => !sent.has(id));
    expect(fresh.length).toBeGreaterThan(30);
    await expectAnsweredOnce(fresh);
  });
});
