import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopedKey } from '../../src/contract/scoped-key.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { startApiWorld } from '../helpers/api-world.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { wavFile } from '../helpers/wav-header.js';

const ACME = 'acme-token-0123456789abcdef0123';
const GLOBEX = 'globex-token-0123456789abcdef01';
/** An operator's token: reads every tenant's data, naming one with X-AVA-Tenant. */
const OPS = 'ops-admin-token-0123456789abcdef';
const as = (token: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...extra });
let world: Awaited<ReturnType<typeof startApiWorld>>;
let counting: CountingGenerator;
let nonce = 0;
const message = (messageId: string, conversationId = `conv-${++nonce}`, text = `I like turtles #${++nonce}.`) => ({
  v: 1,
  messageId,
  conversationId,
  userId: 'alice',
  text,
});
const generationsOf = (text: string) => counting.prompts.filter((p) => p.includes(text)).length;

beforeAll(async () => {
  world = await startApiWorld(
    'tenants',
    {
      AVA_API_TOKENS: `acme:${ACME}:enqueue+read,globex:${GLOBEX}:enqueue+read,ops:${OPS}:admin`,
      AVA_MAX_NEW_TOKENS: '2',
      AVA_API_RATE_LIMIT: '100000',
    },
    (g) => (counting = new CountingGenerator(g)),
  );
}, 120_000);
afterAll(async () => world?.close());

const post = (token: string, payload: unknown) =>
  world.api.inject({ method: 'POST', url: '/v1/messages', payload: payload as object, headers: as(token) });
const get = (token: string, url: string, extra: Record<string, string> = {}) =>
  world.api.inject({ url, headers: as(token, extra) });
const answered = (tenant: string, ids: string[]) =>
  followReplies(
    world.database,
    ids.map((id) => scopedKey(tenant, id)),
    () => undefined,
    30_000,
  );

describe('tenants cannot see or disturb each other', () => {
  it('gives two tenants that number their messages alike two messages, each answered within its own tenant', async () => {
    const a = message('1', 'support', 'Acme asks about turtles #a1.');
    const b = message('1', 'support', 'Globex asks about turtles #b1.');
    expect((await post(ACME, a)).statusCode).toBe(202);
    expect((await post(GLOBEX, { ...b, userId: 'bob' })).statusCode).toBe(202);
    await answered('acme', ['1']);
    await answered('globex', ['1']);
    const mine = (await get(ACME, '/v1/messages/1')).json();
    const theirs = (await get(GLOBEX, '/v1/messages/1')).json();
    expect(mine).toMatchObject({ messageId: '1', conversationId: 'support', userId: 'alice', tenant: 'acme' });
    expect(theirs).toMatchObject({ messageId: '1', conversationId: 'support', userId: 'bob', tenant: 'globex' });
    // One generation each: neither message was taken for the other.
    expect(generationsOf('#a1.')).toBe(1);
    expect(generationsOf('#b1.')).toBe(1);
    // Each conversation holds its own tenant's turn only, though both are called "support".
    const conversation = (await get(ACME, '/v1/conversations/support')).json();
    expect(conversation.turns.map((t: { user: string }) => t.user)).toEqual(['Acme asks about turtles #a1.']);
  });

  it("answers 404 to every read of another tenant's data, and an admin reads any tenant it names", async () => {
    const own = message('private-1', 'private-conv', 'A secret about turtles #p1.');
    expect((await post(ACME, { ...own, speech: false })).statusCode).toBe(202);
    await answered('acme', ['private-1']);
    for (const url of [
      '/v1/messages/private-1',
      '/v1/messages/private-1/stream',
      '/v1/messages/private-1/audio',
      '/v1/conversations/private-conv',
    ]) {
      const res = await get(GLOBEX, url);
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code, url).toBe('ERR_NOT_FOUND');
    }
    const feed = (await get(GLOBEX, '/v1/replies?limit=500')).json();
    expect(feed.items.map((r: { messageId: string }) => r.messageId)).not.toContain('private-1');
    expect(feed.items.every((r: { tenant: string }) => r.tenant === 'globex')).toBe(true);
    // A tenant cannot name another one; an admin can, and reads across tenants.
    expect((await get(GLOBEX, '/v1/messages/private-1', { 'x-ava-tenant': 'acme' })).statusCode).toBe(403);
    expect((await get(OPS, '/v1/messages/private-1', { 'x-ava-tenant': 'acme' })).json()).toMatchObject({
      messageId: 'private-1',
      tenant: 'acme',
    });
    const all = (await get(OPS, '/v1/replies?limit=500')).json();
    expect(new Set(all.items.map((r: { tenant: string }) => r.tenant))).toEqual(new Set(['acme', 'globex']));
    // A message body may not name another tenant either.
    expect((await post(GLOBEX, { ...message('x-1'), tenant: 'acme' })).statusCode).toBe(403);
  });

  it('treats a messageId sent again as the same message when its content is the same, else 409 naming messageId', async () => {
    const m = message('again-1', 'again-conv', 'Tell me about turtles #g1.');
    expect((await post(ACME, m)).statusCode).toBe(202);
    expect((await post(ACME, m)).statusCode).toBe(202);
    await answered('acme', ['again-1']);
    // Again after it was answered and its job is gone: still the same message, not answered twice.
    expect((await post(ACME, m)).statusCode).toBe(202);
    const changed = await post(ACME, { ...m, text: 'Something else entirely #g2.' });
    expect(changed.statusCode).toBe(409);
    expect(changed.json().error).toMatchObject({
      code: 'ERR_IDEMPOTENCY_CONFLICT',
      issues: [{ path: 'messageId', message: expect.stringContaining('other content') }],
    });
    // Past Redis's memory of it (a day), the stored reply still recognises it.
    await world.redis.del(world.keys.messageDigest(scopedKey('acme', 'again-1')));
    expect((await post(ACME, m)).statusCode).toBe(202);
    expect((await post(ACME, { ...m, text: 'Something else entirely #g2.' })).statusCode).toBe(409);
    await new Promise((r) => setTimeout(r, 300));
    expect(generationsOf('#g1.')).toBe(1);
    expect(generationsOf('#g2.')).toBe(0);
    expect((await get(ACME, '/v1/messages/again-1')).json().status).toBe('replied');
  });

  it('stores a voice message sent again once, and refuses its messageId with another file before storing it', async () => {
    const voice = (audio: Buffer) => ({
      method: 'POST' as const,
      url: '/v1/messages/audio',
      headers: as(ACME),
      payload: { messageId: 'voice-1', conversationId: 'voice-conv', userId: 'alice', audio: audio.toString('base64') },
    });
    const uploads = () =>
      world.database.db
        .collection('uploads.files')
        .countDocuments({ 'metadata.messageId': scopedKey('acme', 'voice-1') });
    const first = await world.api.inject(voice(wavFile(16_000, Buffer.alloc(3_200, 1))));
    expect(first.statusCode, first.body).toBe(202);
    expect(first.json().audio.fileId).toMatch(/^[0-9a-f]{24}$/);
    const again = await world.api.inject(voice(wavFile(16_000, Buffer.alloc(3_200, 1))));
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual({ messageId: 'voice-1', status: 'queued' });
    const other = await world.api.inject(voice(wavFile(16_000, Buffer.alloc(3_200, 2))));
    expect(other.statusCode).toBe(409);
    expect(other.json().error.issues).toEqual([
      { path: 'messageId', message: expect.stringContaining('other content') },
    ]);
    expect(await uploads()).toBe(1);
  });

  it('reads back an id of 128 characters through every route that takes one', async () => {
    const id = 'L'.repeat(127) + ':';
    const conversation = 'C'.repeat(128);
    expect((await post(ACME, message(id, conversation, 'A long id about turtles #l1.'))).statusCode).toBe(202);
    await answered('acme', [id]);
    const enc = encodeURIComponent(id);
    expect((await get(ACME, `/v1/messages/${enc}`)).json()).toMatchObject({ messageId: id, status: 'replied' });
    const stream = await get(ACME, `/v1/messages/${enc}/stream`);
    expect(stream.statusCode).toBe(200);
    expect(stream.body).toContain('event: reply');
    expect((await get(ACME, `/v1/messages/${enc}/audio`)).statusCode).toBe(200);
    expect((await get(ACME, `/v1/conversations/${conversation}`)).json()._id).toBe(conversation);
  });
});
