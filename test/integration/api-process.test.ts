import { spawn, type ChildProcess } from 'node:child_process';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ReplyStreamPublisher } from '../../src/queue/reply-stream.js';
import { ROOT } from '../helpers/paths.js';
import { cleanup, isolatedNames, MONGO_URL, silentLog, testConfig } from '../helpers/services.js';
import { parseSse, sseReader } from '../helpers/sse.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { stablePort, terminate, waitForPort } from '../helpers/test-ports.js';

const TOKEN = 'process-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const config = testConfig(isolatedNames('apiproc'));
let proxy: TcpProxy;
let api: ChildProcess;
let base: string;
let stderr = '';

beforeAll(async () => {
  proxy = await TcpProxy.start(Number(new URL(MONGO_URL).port || 27017));
  const port = await stablePort();
  api = spawn(process.execPath, ['dist/workers/api-server.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      AVA_REDIS_URL: config.redis.url,
      AVA_MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
      AVA_MONGO_TIMEOUT_MS: '300',
      AVA_DB_NAME: config.storage.dbName,
      AVA_QUEUE_NAME: config.queue.name,
      AVA_API_PORT: String(port),
      AVA_API_TOKENS: `p:${TOKEN}:enqueue+read+admin:default`,
      AVA_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  api.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  base = `http://127.0.0.1:${port}`;
  expect(await waitForPort(port, 30_000)).toBe(true);
});
afterAll(async () => {
  await terminate(api);
  await proxy.close();
  await cleanup(config);
});

it('survives every request while the database is down: each gets an answer, the process never exits', async () => {
  const post = (id: string) =>
    fetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ v: 1, messageId: id, conversationId: 'c', userId: 'u', text: 'hello' }),
    });
  expect((await post('crash-1')).status).toBe(202);
  // A client waiting on a stream (no worker runs here) when the database goes away.
  const waiting = sseReader(await fetch(`${base}/v1/messages/crash-1/stream`, { headers: auth }));
  await proxy.cut();
  // The worker's "done" arrives; the relay's read of the stored reply then fails. It must end that stream, not the process.
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const publisher = new ReplyStreamPublisher(
    redis,
    new RedisKeys(config.queue.prefix, config.queue.name),
    { liveSeconds: 60, retainSeconds: 60 },
    silentLog,
  );
  publisher.token('crash-1', 'a1', 'partial');
  publisher.done('crash-1');
  await publisher.flush();
  const events = await waiting.rest();
  expect(events.map((e) => e.event)).toEqual(['token', 'error']);
  expect(events[1].data.code).toBe('ERR_STREAM');

  const answers = await Promise.all([
    fetch(`${base}/v1/messages/crash-1`, { headers: auth }),
    fetch(`${base}/v1/messages/crash-1?wait=500`, { headers: auth }),
    fetch(`${base}/v1/messages/crash-1/stream`, { headers: auth }),
    fetch(`${base}/v1/replies`, { headers: auth }),
    fetch(`${base}/v1/stats`, { headers: auth }),
    fetch(`${base}/v1/conversations/c`, { headers: auth }),
    fetch(`${base}/generate?context=hi`, { headers: auth }),
    fetch(`${base}/readyz`),
    post('crash-2'),
  ]);
  const bodies = await Promise.all(answers.map((r) => r.text()));
  // Each answered with its status and a JSON (or SSE) body, never a stack trace: 503 with Retry-After where the
  // database was needed. /v1/stats reads only Redis (counters), so it still answers.
  expect(answers.map((r) => r.status)).toEqual([503, 503, 200, 503, 200, 503, 503, 503, 202]);
  expect(answers[0].headers.get('retry-after')).toBe('2');
  // The stream exists in Redis, so it opens; it ends with an error event once it needs the database.
  expect(parseSse(bodies[2]).at(-1)).toEqual({
    event: 'error',
    data: { code: 'ERR_STREAM', message: expect.any(String) },
  });
  for (const body of bodies) expect(body).not.toMatch(/\.ts:\d+/);
  expect(JSON.parse(bodies[0])).toEqual({
    error: { code: 'ERR_SERVICE_UNAVAILABLE', message: 'the database is not answering; retry in 2 s' },
  });
  expect(JSON.parse(bodies[7])).toMatchObject({ status: 'not ready', checks: { redis: true, database: false } });
  await proxy.restore();
  expect(api.exitCode, stderr).toBeNull();
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  redis.disconnect();
}, 60_000);
