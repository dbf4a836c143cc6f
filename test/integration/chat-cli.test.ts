import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AvaConfig } from '../../src/config/config.js';
import type { Database } from '../../src/storage/database.js';
import { ROOT } from '../helpers/paths.js';
import { startApiWorld } from '../helpers/api-world.js';
import { replyText } from '../helpers/reply-text.js';

const run = promisify(execFile);
const TOKEN = 'chat-token-0123456789abcdef';
let world: Awaited<ReturnType<typeof startApiWorld>>;
let config: AvaConfig;
let db: Database;
let api: FastifyInstance;

beforeAll(async () => {
  world = await startApiWorld('chat', { AVA_API_TOKENS: `chat:${TOKEN}:enqueue+read+admin:default` });
  ({ config, database: db, api } = world);
  await api.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => world.close());

/** Runs `ava chat` in a pseudo-terminal, typing `lines`; returns the transcript without terminal control codes. */
async function chat(lines: string[], extraArgs: string[] = []) {
  const env = {
    ...process.env,
    AVA_REDIS_URL: config.redis.url,
    AVA_MONGO_URL: config.storage.url,
    AVA_QUEUE_NAME: config.queue.name,
    AVA_DB_NAME: config.storage.dbName,
  };
  const { stdout } = await run(
    'python3',
    ['test/helpers/chat_pty.py', ...lines, '--', process.execPath, 'bin/ava.js', 'chat', ...extraArgs],
    { cwd: ROOT, env, timeout: 90_000 },
  );
  // eslint-disable-next-line no-control-regex
  return stdout.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}

it('chats straight against Redis and the database: You> line, Bot> streamed reply, one conversation, ends on an empty line', async () => {
  const transcript = await chat(['你好，我的订单在哪里？', 'And my refund?']);
  expect(transcript).toMatch(/EXIT 0\s*$/);
  const replies = await db.replies.find({}).sort({ createdAt: 1 }).toArray();
  expect(replies).toHaveLength(2);
  expect(new Set(replies.map((r) => r.conversationId)).size).toBe(1);
  for (const r of replies) expect(transcript).toContain(`Bot> ${replyText(r)}`);
  expect(transcript).toContain('You> 你好，我的订单在哪里？');
});

it('chats through the HTTP API with a token', async () => {
  const url = `http://127.0.0.1:${(api.server.address() as import('node:net').AddressInfo).port}`;
  const transcript = await chat(['Hello over HTTP'], ['--api', url, '--token', TOKEN]);
  expect(transcript).toMatch(/EXIT 0\s*$/);
  const [reply] = await db.replies.find({ userId: 'cli-user' }).sort({ createdAt: -1 }).limit(1).toArray();
  expect(transcript).toContain(`Bot> ${replyText(reply)}`);
});

it("saves each reply's speech as WAV with --save-audio, straight and through the API", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-chat-audio-'));
  try {
    const url = `http://127.0.0.1:${(api.server.address() as import('node:net').AddressInfo).port}`;
    for (const args of [
      ['--save-audio', dir],
      ['--save-audio', dir, '--api', url, '--token', TOKEN],
    ]) {
      const transcript = await chat(['Hello, can you speak?'], args);
      expect(transcript).toMatch(/EXIT 0\s*$/);
      const file = /\[audio: (.+\.wav)\]/.exec(transcript)?.[1];
      expect(file, transcript).toBeDefined();
      expect((await readFile(file!)).toString('ascii', 0, 4)).toBe('RIFF');
    }
    expect((await readdir(dir)).length).toBe(2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('lists replies as JSON lines and shows stats, straight and through the API', async () => {
  const env = {
    ...process.env,
    AVA_REDIS_URL: config.redis.url,
    AVA_MONGO_URL: config.storage.url,
    AVA_QUEUE_NAME: config.queue.name,
    AVA_DB_NAME: config.storage.dbName,
    AVA_API_TOKEN: TOKEN,
  };
  const ava = async (...args: string[]) =>
    (await run(process.execPath, ['bin/ava.js', ...args], { cwd: ROOT, env, timeout: 60_000 })).stdout;
  const url = `http://127.0.0.1:${(api.server.address() as import('node:net').AddressInfo).port}`;
  const total = await db.replies.countDocuments({});
  expect(total).toBeGreaterThan(0);
  for (const extra of [[], ['--api', url]]) {
    const lines = (await ava('replies', '--limit', '1', ...extra))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(total);
    expect(new Set(lines.map((l) => l.messageId)).size).toBe(total);
    const stats = JSON.parse(await ava('stats', ...extra));
    expect(stats.replies.replied + stats.replies.failed).toBe(total);
    expect(stats.workers).toHaveLength(1);
  }
});

it('enqueues and shows a conversation, straight and through the API', async () => {
  const env = {
    ...process.env,
    AVA_REDIS_URL: config.redis.url,
    AVA_MONGO_URL: config.storage.url,
    AVA_QUEUE_NAME: config.queue.name,
    AVA_DB_NAME: config.storage.dbName,
    AVA_API_TOKEN: TOKEN,
  };
  const ava = async (...args: string[]) =>
    (await run(process.execPath, ['bin/ava.js', ...args], { cwd: ROOT, env, timeout: 60_000 })).stdout;
  const url = `http://127.0.0.1:${(api.server.address() as import('node:net').AddressInfo).port}`;
  for (const [i, extra] of [[], ['--api', url]].entries()) {
    const out = (
      await ava('enqueue', '-c', 'cli-conv', '-i', `cli-${i}`, '--wait', ...extra, 'Hello', 'from', 'the', 'CLI')
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out[0]).toEqual({ messageId: `cli-${i}`, status: 'queued' });
    expect(out[1]).toMatchObject({ messageId: `cli-${i}`, status: 'replied', text: expect.any(String) });
  }
  for (const extra of [[], ['--api', url]]) {
    // Turns are written just after each reply is stored; both turns are there once the second is.
    await expect
      .poll(async () => JSON.parse(await ava('conversation', 'cli-conv', ...extra)), { timeout: 10_000 })
      .toMatchObject({
        _id: 'cli-conv',
        turns: [
          { messageId: 'cli-0', user: 'Hello from the CLI', intent: expect.any(String) },
          { messageId: 'cli-1', intent: expect.any(String) },
        ],
        messages: [
          { messageId: 'cli-0', status: 'replied', intent: expect.any(String) },
          { messageId: 'cli-1', status: 'replied' },
        ],
      });
    const text = await ava('conversation', 'cli-conv', '--text', ...extra);
    expect(text).toMatch(/^conversation cli-conv \(user cli-user\)/);
    expect(text).toContain('    You> Hello from the CLI\n    Bot> ');
    expect(text).toMatch(/^ {2}cli-1 {2}replied at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}intent \w+/m);
  }
});
