import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopedKey } from '../../src/contract/scoped-key.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { startApiWorld } from '../helpers/api-world.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { wavFile } from '../helpers/wav-header.js';

/** One token per tenant, so that each quota is spent by one test only. */
const TOKENS = {
  burst: 'burst-token-0123456789abcdef0123',
  calm: 'calm-token-0123456789abcdef01234',
  backlog: 'backlog-token-0123456789abcdef01',
  streams: 'streams-token-0123456789abcdef01',
} as const;
type Tenant = keyof typeof TOKENS;
const as = (tenant: Tenant) => ({ authorization: `Bearer ${TOKENS[tenant]}` });
let world: Awaited<ReturnType<typeof startApiWorld>>;
let counting: CountingGenerator;
let nonce = 0;
const message = (messageId: string, extra: object = {}) => ({
  v: 1,
  messageId,
  conversationId: `q-${++nonce}`,
  userId: 'u',
  text: `I like turtles #q${nonce}.`,
  ...extra,
});
const post = (tenant: Tenant, payload: unknown) =>
  world.api.inject({ method: 'POST', url: '/v1/messages', payload: payload as object, headers: as(tenant) });
const generationsOf = (text: string) => counting.prompts.filter((p) => p.includes(text)).length;

beforeAll(async () => {
  world = await startApiWorld(
    'quotas',
    {
      AVA_API_TOKENS: Object.entries(TOKENS)
        .map(([name, token]) => `${name}:${token}:enqueue+read`)
        .join(','),
      AVA_MAX_NEW_TOKENS: '2',
      AVA_API_RATE_LIMIT: '100000',
      AVA_TENANT_MESSAGES_PER_MINUTE: '6',
      AVA_API_MAX_MESSAGES_PER_REQUEST: '3',
      AVA_API_MAX_MESSAGE_BYTES: '2048',
      AVA_TENANT_MAX_QUEUED: '4',
      AVA_TENANT_MAX_STREAMS: '1',
    },
    (g) => (counting = new CountingGenerator(g)),
  );
}, 120_000);
afterAll(async () => world?.close());

describe("each tenant's quotas, refused before any work with the limit named", () => {
  it('refuses a request of too many or too large messages with 413, taking nothing from the minute', async () => {
    const many = await post('burst', [message('s-1'), message('s-2'), message('s-3'), message('s-4')]);
    expect(many.statusCode).toBe(413);
    expect(many.json().error).toMatchObject({
      code: 'ERR_QUOTA',
      message: expect.stringContaining('AVA_API_MAX_MESSAGES_PER_REQUEST'),
    });
    const history = Array.from({ length: 10 }, () => ({ user: 'x'.repeat(200), assistant: 'y'.repeat(200) }));
    const large = await post('burst', message('s-5', { history }));
    expect(large.statusCode).toBe(413);
    expect(large.json().error.message).toContain('AVA_API_MAX_MESSAGE_BYTES');
  });

  it('holds a tenant to its messages a minute with 429 and Retry-After, leaves other tenants alone, and loses nothing accepted', async () => {
    const accepted: string[] = [];
    // Each answered before the next is sent, so that only the minute's quota can refuse them.
    for (let i = 0; i < 6; i++) {
      const m = message(`r-${i}`);
      const res = await post('burst', m);
      expect(res.statusCode, res.body).toBe(202);
      accepted.push(m.text);
      await followReplies(world.database, [scopedKey('burst', `r-${i}`)], () => undefined, 30_000);
    }
    const over = await post('burst', message('r-6'));
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json().error.message).toContain('AVA_TENANT_MESSAGES_PER_MINUTE');
    const other = message('r-other');
    expect((await post('calm', other)).statusCode).toBe(202);
    await followReplies(world.database, [scopedKey('calm', 'r-other')], () => undefined, 30_000);
    // Every accepted message generated once; the refused one never.
    for (const text of [...accepted, other.text]) expect(generationsOf(text), text).toBe(1);
    expect(await world.database.replies.countDocuments({ _id: scopedKey('burst', 'r-6') })).toBe(0);
    // A voice upload past the minute is refused before its file is stored.
    const files = await world.database.db.collection('uploads.files').countDocuments();
    const voice = await world.api.inject({
      method: 'POST',
      url: '/v1/messages/audio',
      headers: as('burst'),
      payload: {
        messageId: 'r-voice',
        conversationId: 'r-voice',
        userId: 'u',
        audio: wavFile(16_000, Buffer.alloc(3_200)).toString('base64'),
      },
    });
    expect(voice.statusCode).toBe(429);
    expect(await world.database.db.collection('uploads.files').countDocuments()).toBe(files);
  });

  it("bounds a tenant's unanswered messages, and takes more once they are answered", async () => {
    let release = () => undefined as void;
    counting.hold = new Promise<void>((r) => (release = r));
    try {
      for (let i = 0; i < 4; i++) expect((await post('backlog', message(`b-${i}`))).statusCode).toBe(202);
      const over = await post('backlog', message('b-4'));
      expect(over.statusCode).toBe(429);
      expect(over.json().error.message).toContain('AVA_TENANT_MAX_QUEUED');
    } finally {
      release();
      counting.hold = undefined;
    }
    await followReplies(
      world.database,
      Array.from({ length: 4 }, (_, i) => scopedKey('backlog', `b-${i}`)),
      () => undefined,
      30_000,
    );
    expect((await post('backlog', message('b-5'))).statusCode).toBe(202);
  });

  it('bounds the reply streams a tenant holds open', async () => {
    const base = await world.listen();
    let release = () => undefined as void;
    counting.hold = new Promise<void>((r) => (release = r));
    const first = new AbortController();
    try {
      expect((await post('streams', message('st-1'))).statusCode).toBe(202);
      const open = await fetch(`${base}/v1/messages/st-1/stream`, { headers: as('streams'), signal: first.signal });
      expect(open.status).toBe(200);
      const second = await fetch(`${base}/v1/messages/st-1/stream`, { headers: as('streams') });
      expect(second.status).toBe(429);
      expect((await second.json()).error.message).toContain('AVA_TENANT_MAX_STREAMS');
      first.abort();
      // Closed streams are counted closed.
      await expect
        .poll(async () => (await fetch(`${base}/v1/messages/st-1`, { headers: as('streams') })).status)
        .toBe(200);
      await new Promise((r) => setTimeout(r, 100));
      const again = new AbortController();
      const reopened = await fetch(`${base}/v1/messages/st-1/stream`, { headers: as('streams'), signal: again.signal });
      expect(reopened.status).toBe(200);
      again.abort();
    } finally {
      release();
      counting.hold = undefined;
    }
  });

  it("caps the OpenAI messages array, and a request's max_tokens by the operator's maximum", async () => {
    const long = await world.api.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: as('calm'),
      payload: { model: 'tiny', messages: Array.from({ length: 200 }, () => ({ role: 'user', content: 'hi' })) },
    });
    expect(long.statusCode).toBe(400);
    expect(long.json().error.param).toBe('messages');
    const capped = await world.api.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: as('calm'),
      payload: { model: 'tiny-raw', max_tokens: 400, messages: [{ role: 'user', content: 'Once upon a time' }] },
    });
    expect(capped.statusCode, capped.body).toBe(200);
    expect(capped.json().usage.completion_tokens).toBeLessThanOrEqual(2);
  });
});
