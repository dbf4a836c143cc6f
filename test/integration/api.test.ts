import type { Redis } from 'ioredis';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApiServer } from '../../src/api/api-server.js';
import type { MessageProducer } from '../../src/queue/message-producer.js';
import type { ReplyStreamReader } from '../../src/queue/reply-stream-reader.js';
import type { Database } from '../../src/storage/database.js';
import { bullQueueOf, silentLog } from '../helpers/services.js';
import { startApiWorld } from '../helpers/api-world.js';
import { parseSse, shownText } from '../helpers/sse.js';
import { messageJobId } from '../../src/queue/redis-keys.js';

const WRITER = 'writer-token-0123456789abcdef';
const READER = 'reader-token-0123456789abcdef';
let world: Awaited<ReturnType<typeof startApiWorld>>;
let app: FastifyInstance;
let redis: Redis;
let streams: ReplyStreamReader;
let producer: MessageProducer;
let database: Database;
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const msg = (id: string, text = 'Where is my parcel?') => ({
  v: 1 as const,
  messageId: id,
  conversationId: 'api-conv',
  userId: 'u1',
  text,
});

beforeAll(async () => {
  world = await startApiWorld('api', {
    AVA_API_TOKENS: `crm:${WRITER}:enqueue+read:default,dash:${READER}:read+admin:default`,
    AVA_API_RATE_LIMIT: '1000',
    AVA_API_BODY_LIMIT_BYTES: '200000',
  });
  ({ api: app, redis, streams, producer, database } = world);
});
afterAll(async () => world.close());

describe('HTTP API on real services', () => {
  it('authenticates every route but health: 401 without or with an unknown token, 403 without the scope', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const none = await app.inject({ method: 'POST', url: '/v1/messages', payload: msg('a1') });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toEqual({ error: { code: 'ERR_UNAUTHENTICATED', message: expect.stringContaining('bearer') } });
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/messages',
          payload: msg('a1'),
          headers: as('revoked-token-0123456789'),
        })
      ).statusCode,
    ).toBe(401);
    const wrongScope = await app.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: msg('a1'),
      headers: as(READER),
    });
    expect(wrongScope.statusCode).toBe(403);
    expect(wrongScope.json().error.code).toBe('ERR_FORBIDDEN');
    for (const url of ['/openapi.json', '/v1/replies', '/v1/messages/x', '/v1/conversations/x'])
      expect((await app.inject({ url })).statusCode, url).toBe(401);
  });

  it('enqueues, then long-polls the reply; a repeated enqueue is accepted and answered once', async () => {
    const posted = await app.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: msg('m1', '你好'),
      headers: as(WRITER),
    });
    expect(posted.statusCode).toBe(202);
    expect(posted.json()).toEqual({ messageId: 'm1', status: 'queued' });
    expect(
      (await app.inject({ method: 'POST', url: '/v1/messages', payload: msg('m1', '你好'), headers: as(WRITER) }))
        .statusCode,
    ).toBe(202);
    const got = await app.inject({ url: '/v1/messages/m1?wait=20000', headers: as(READER) });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({
      messageId: 'm1',
      status: 'replied',
      text: expect.any(String),
      conversationId: 'api-conv',
    });
    expect(await database.replies.countDocuments({ _id: 'm1' })).toBe(1);
    expect((await app.inject({ url: '/v1/messages/nope', headers: as(READER) })).statusCode).toBe(404);
    const queue = bullQueueOf(world.config, redis);
    await queue.add('message', msg('later'), { jobId: messageJobId('later'), delay: 60_000 });
    await queue.close();
    expect((await app.inject({ url: '/v1/messages/later', headers: as(READER) })).json()).toEqual({
      messageId: 'later',
      status: 'queued',
      queuedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      attempts: 0,
    });
    // Turns (with intents) and message statuses; turns are written just after the reply is stored.
    await expect
      .poll(async () => (await app.inject({ url: '/v1/conversations/api-conv', headers: as(READER) })).json())
      .toMatchObject({
        _id: 'api-conv',
        tenant: 'default',
        userId: 'u1',
        turns: [{ messageId: 'm1', user: '你好', intent: expect.any(String) }],
        messages: [{ messageId: 'm1', status: 'replied' }],
      });
  });

  it('takes arrays of messages and names every bad field of every bad one', async () => {
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: [msg('b1'), msg('b2')],
      headers: as(WRITER),
    });
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toHaveLength(2);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: [msg('b3'), { ...msg('$b4'), text: '' }],
      headers: as(WRITER),
    });
    expect(bad.statusCode).toBe(400);
    const paths = bad.json().error.issues.map((i: { path: string }) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['[1].messageId', '[1].text']));
    expect(await database.replies.countDocuments({ _id: 'b3' })).toBe(0);
  });

  it('answers malformed requests with a 4xx JSON error naming the problem, never a 500', async () => {
    const cases = [
      {
        method: 'POST' as const,
        url: '/v1/messages',
        payload: '{"v":1,',
        headers: { ...as(WRITER), 'content-type': 'application/json' },
      },
      {
        method: 'POST' as const,
        url: '/v1/messages',
        payload: 'v=1',
        headers: { ...as(WRITER), 'content-type': 'text/plain' },
      },
      {
        method: 'POST' as const,
        url: '/v1/messages',
        payload: JSON.stringify({ ...msg('big'), text: 'x'.repeat(300_000) }),
        headers: { ...as(WRITER), 'content-type': 'application/json' },
      },
      { method: 'POST' as const, url: '/v1/messages', payload: { ...msg('c1'), extra: true }, headers: as(WRITER) },
      { method: 'POST' as const, url: '/v1/messages', payload: [], headers: as(WRITER) },
      { method: 'GET' as const, url: '/v1/messages/$where', headers: as(READER) },
      { method: 'GET' as const, url: '/v1/messages/m1?wait=99999', headers: as(READER) },
      { method: 'GET' as const, url: '/v1/replies?limit=0', headers: as(READER) },
      { method: 'GET' as const, url: '/v1/replies?since=garbage', headers: as(READER) },
      { method: 'GET' as const, url: '/v1/replies?status=maybe', headers: as(READER) },
    ];
    for (const c of cases) {
      const res = await app.inject(c);
      expect(res.statusCode, `${c.method} ${c.url}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, `${c.method} ${c.url}`).toBeLessThan(500);
      expect(res.json().error.message, c.url).toEqual(expect.any(String));
      expect(res.body).not.toMatch(/at .*\.ts:\d+/);
    }
  });

  it('pages through stored replies with a cursor, filtered by status', async () => {
    await app.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: [msg('p1'), msg('p2'), msg('p3')],
      headers: as(WRITER),
    });
    await app.inject({ url: '/v1/messages/p3?wait=20000', headers: as(READER) });
    await app.inject({ url: '/v1/messages/p1?wait=20000', headers: as(READER) });
    await app.inject({ url: '/v1/messages/p2?wait=20000', headers: as(READER) });
    const seen: string[] = [];
    let since = '';
    for (let page = 0; page < 20; page++) {
      const res = await app.inject({
        url: `/v1/replies?limit=2&status=replied${since ? `&since=${since}` : ''}`,
        headers: as(READER),
      });
      const body = res.json();
      if (body.items.length === 0) break;
      seen.push(...body.items.map((i: { messageId: string }) => i.messageId));
      since = body.next;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(['m1', 'p1', 'p2', 'p3']));
    expect(seen.length).toBe(await database.replies.countDocuments({ status: 'replied' }));
  });

  it("serves the origin document's /generate by GET and POST, and the OpenAPI document", async () => {
    const got = await app.inject({ url: '/generate?context=Hello%20there', headers: as(WRITER) });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual({ status: 'ok', data: { generated_text: expect.any(String) } });
    const posted = await app.inject({
      method: 'POST',
      url: '/generate',
      payload: { context: '你好' },
      headers: as(WRITER),
    });
    expect(posted.json().status).toBe('ok');
    // The document is derived from the routes: every route but the dashboard's files and the document itself is in it,
    // with the parameters and bodies its schema validates.
    const spec = (await app.inject({ url: '/openapi.json', headers: as(READER) })).json();
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths).sort()).toEqual([
      '/generate',
      '/healthz',
      '/metrics',
      '/readyz',
      '/v1/chat/completions',
      '/v1/completions',
      '/v1/conversations/{id}',
      '/v1/embeddings',
      '/v1/messages',
      '/v1/messages/audio',
      '/v1/messages/{id}',
      '/v1/messages/{id}/audio',
      '/v1/messages/{id}/stream',
      '/v1/models',
      '/v1/replies',
      '/v1/stats',
    ]);
    expect(spec.components.schemas.Message.properties.text).toBeDefined();
    expect(
      spec.paths['/v1/messages/{id}'].get.parameters
        .map((p: { name: string; in: string }) => `${p.in}:${p.name}`)
        .sort(),
    ).toEqual(['path:id', 'query:wait']);
    expect(spec.paths['/v1/replies'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'intent',
      'limit',
      'order',
      'since',
      'status',
    ]);
    expect(JSON.stringify(spec.paths['/v1/messages'].post.requestBody)).toContain('#/components/schemas/Message');
    expect(Object.keys(spec.paths['/v1/messages/audio'].post.requestBody.content).sort()).toEqual([
      'application/json',
      'multipart/form-data',
    ]);
    expect(
      spec.paths['/v1/chat/completions'].post.requestBody.content['application/json'].schema.properties.messages,
    ).toBeDefined();
    expect(spec.paths['/v1/stats'].get.security).toEqual([{ bearer: [] }]);
    expect(spec.paths['/healthz'].get.security).toBeUndefined();
  });

  it('speaks a stored reply as WAV or Ogg/Opus in its language (English with Piper, Mandarin with espeak-ng), once: a second fetch is read from the cache', async () => {
    const now = new Date();
    const stored = (id: string, text: string | undefined) => ({
      _id: id,
      tenant: 'default',
      conversationId: 'speech',
      userId: 'u1',
      ...(text
        ? { status: 'replied' as const, text, finishReason: 'stop' as const }
        : { status: 'failed' as const, error: { code: 'ERR_HANDLER' as const, message: 'x' } }),
      model: { id: 'tiny', revision: 'r' },
      tokens: { prompt: 0, generated: 0 },
      timings: { queuedAt: now, startedAt: now, finishedAt: now, inferenceMs: 0 },
      createdAt: now,
    });
    await database.replies.insertMany([
      stored('say-en', 'Your order has shipped and will arrive on Friday.'),
      stored('say-zh', '您的订单已发货，周五送达。'),
      stored('say-failed', undefined),
    ]);
    const first = await app.inject({ url: '/v1/messages/say-en/audio', headers: as(READER) });
    expect(first.statusCode).toBe(200);
    expect(first.headers).toMatchObject({
      'content-type': 'audio/wav',
      'x-ava-voice': 'piper:en_US-joe-medium',
      'x-ava-audio-cache': 'miss',
    });
    const wav = first.rawPayload;
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(4)).toBe(wav.length - 8);
    const seconds = wav.readUInt32LE(40) / wav.readUInt32LE(28);
    expect(seconds).toBeGreaterThan(1.5);
    const second = await app.inject({ url: '/v1/messages/say-en/audio', headers: as(READER) });
    expect(second.headers['x-ava-audio-cache']).toBe('hit');
    expect(second.rawPayload.equals(wav)).toBe(true);
    // Ogg/Opus, encoded by ffmpeg from the cached WAV, and cached in turn.
    const ogg = await app.inject({ url: '/v1/messages/say-en/audio?format=ogg', headers: as(READER) });
    expect(ogg.headers).toMatchObject({ 'content-type': 'audio/ogg; codecs=opus', 'x-ava-audio-cache': 'miss' });
    expect(ogg.rawPayload.toString('ascii', 0, 4)).toBe('OggS');
    expect(ogg.rawPayload.includes(Buffer.from('OpusHead'))).toBe(true);
    expect(ogg.rawPayload.length).toBeLessThan(wav.length / 4);
    expect(
      (await app.inject({ url: '/v1/messages/say-en/audio?format=ogg', headers: as(READER) })).headers[
        'x-ava-audio-cache'
      ],
    ).toBe('hit');
    expect(
      (await app.inject({ url: '/v1/messages/say-en/audio?format=mp3', headers: as(READER) })).json(),
    ).toMatchObject({ error: { code: 'ERR_REQUEST', message: expect.stringContaining('query.format') } });
    const zh = await app.inject({ url: '/v1/messages/say-zh/audio', headers: as(READER) });
    expect(zh.headers).toMatchObject({ 'x-ava-voice': 'cmn' });
    expect(zh.rawPayload.length).toBeGreaterThan(44);
    expect((await app.inject({ url: '/v1/messages/say-failed/audio', headers: as(READER) })).json()).toMatchObject({
      error: { code: 'ERR_NO_TEXT' },
    });
    expect((await app.inject({ url: '/v1/messages/say-none/audio', headers: as(READER) })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/messages/say-en/audio' })).statusCode).toBe(401);

    // A message that asks for speech has it made by the worker once its reply is stored: the first fetch is a hit.
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/messages',
          payload: { ...msg('say-asked', 'hello'), speech: true },
          headers: as(WRITER),
        })
      ).statusCode,
    ).toBe(202);
    expect((await app.inject({ url: '/v1/messages/say-asked?wait=20000', headers: as(READER) })).json()).toMatchObject({
      status: 'replied',
    });
    await expect
      .poll(async () => await database.audio.countDocuments({ messageId: 'say-asked' }), { timeout: 10_000 })
      .toBe(1);
    expect(
      (await app.inject({ url: '/v1/messages/say-asked/audio', headers: as(READER) })).headers['x-ava-audio-cache'],
    ).toBe('hit');
  });

  it('reports readiness from Redis, the database and a connected worker', async () => {
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { redis: true, database: true, workers: true } });
  });

  it('limits each token to its rate and answers 429 with JSON', async () => {
    // A budget of its own: rate limits are counted in Redis under the queue's name, shared by every API process.
    const queue = { ...world.config.queue, name: `${world.config.queue.name}_limited` };
    const limited = await buildApiServer({
      keys: new RedisKeys(queue.prefix, queue.name),
      config: { ...world.config, api: { ...world.config.api, rateLimit: 3 }, queue },
      producer,
      database,
      redis,
      streams,
      log: silentLog,
    });
    const codes = [];
    for (let i = 0; i < 5; i++)
      codes.push((await limited.inject({ url: '/v1/messages/m1', headers: as(READER) })).statusCode);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    const res = await limited.inject({ url: '/v1/messages/m1', headers: as(READER) });
    expect(res.json().error.code).toBe('ERR_RATE_LIMIT');
    expect((await limited.inject({ url: '/v1/messages/m1', headers: as(WRITER) })).statusCode).toBe(200);
    // Another spelling of the same token's header is the same token: no fresh bucket.
    for (const authorization of [`bearer ${READER}`, `BEARER   ${READER}  `, `Bearer\t${READER}`]) {
      expect(
        (await limited.inject({ url: '/v1/messages/m1', headers: { authorization } })).statusCode,
        authorization,
      ).toBe(429);
    }
    expect((await limited.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await limited.inject({ url: '/nowhere', headers: as(READER) })).json().error.code).toBe('ERR_NOT_FOUND');
    await limited.close();
  });

  it('streams a reply over Server-Sent Events as it is generated, then the stored reply', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as import('node:net').AddressInfo).port}`;
    expect((await fetch(`${base}/v1/messages/unknown-1/stream`, { headers: as(READER) })).status).toBe(404);
    await producer.enqueue(msg('s1', 'Tell me about returns'));
    const stream = await fetch(`${base}/v1/messages/s1/stream`, { headers: as(READER) });
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = parseSse(await stream.text());
    const final = events[events.length - 1];
    expect(final.event).toBe('reply');
    expect(final.data).toMatchObject({ messageId: 's1', status: 'replied' });
    const tokens = events.filter((e) => e.event === 'token');
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.every((e) => /^\d+-\d+$/.test(e.id!))).toBe(true);
    expect(shownText(events)).toBe(final.data.text);
    // Once stored, a stream replays the same tokens and ends with the reply at once.
    const again = parseSse(await (await fetch(`${base}/v1/messages/s1/stream`, { headers: as(READER) })).text());
    expect(again.filter((e) => e.event === 'token')).toEqual(tokens);
    expect(again[again.length - 1]).toEqual(final);
  });

  it('exposes Prometheus metrics: queue depth, live workers and their aggregated metrics', async () => {
    // Workers publish their metrics with each heartbeat (every 5 s).
    const scrape = async () => (await app.inject({ url: '/metrics', headers: as(READER) })).body;
    await expect
      .poll(scrape, { timeout: 15_000, interval: 500 })
      .toMatch(/^ava_replies_total\{status="replied",intent="unknown"\} [1-9]\d*$/m);
    const res = await app.inject({ url: '/metrics', headers: as(READER) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toMatch(/^ava_queue_jobs\{state="completed"\} \d+/m);
    expect(res.body).toMatch(/^ava_workers_live 1$/m);
    expect(res.body).toMatch(/^ava_replies_total\{status="replied",intent="unknown"\} [1-9]\d*$/m);
    expect(res.body).toMatch(/^ava_batch_size_count [1-9]\d*$/m);
    // Where a batch's time went, step by step, and how many messages the model wrote.
    for (const step of ['existing', 'plans', 'generate', 'storeGenerated', 'marks', 'turns', 'release'])
      expect(res.body).toMatch(new RegExp(`^ava_batch_step_seconds_count\\{step="${step}"\\} [1-9]\\d*$`, 'm'));
    expect(res.body).toMatch(/^ava_generated_messages_total [1-9]\d*$/m);
    expect(res.body).toMatch(/^ava_enqueue_to_stored_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
  });
});
