/// <reference lib="dom" />
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database } from '../../src/storage/database.js';
import { ROOT } from '../helpers/paths.js';
import { startApiWorld } from '../helpers/api-world.js';
import { replyText } from '../helpers/reply-text.js';

const TOKEN = 'dashboard-token-0123456789';
const CHROMIUM = process.env.AVA_CHROMIUM ?? '/usr/bin/chromium';
let world: Awaited<ReturnType<typeof startApiWorld>>;
let api: FastifyInstance;
let db: Database;
let browser: Browser;

beforeAll(async () => {
  world = await startApiWorld('dash', { AVA_API_TOKENS: `ops:${TOKEN}:enqueue+read+admin:default` });
  ({ api, database: db } = world);
  await api.listen({ host: '127.0.0.1', port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
  await world.close();
});

it('shows queue, workers and the latest replies live in headless Chromium', async () => {
  const base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/#token=${TOKEN}`);
  await page.waitForFunction(() => document.getElementById('workers')?.textContent === '1', undefined, {
    timeout: 20_000,
  });

  const ids = Array.from({ length: 5 }, (_, i) => `dash-${i}`);
  const posted = await api.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: ids.map((messageId, i) => ({
      v: 1,
      messageId,
      conversationId: `c-${i % 2}`,
      userId: 'u',
      text: i % 2 ? '你好，订单在哪里？' : 'Where is my order?',
    })),
  });
  expect(posted.statusCode).toBe(202);
  await page.waitForFunction(
    (want) => want.every((id) => document.getElementById('reply-rows')?.textContent?.includes(id)),
    ids,
    { timeout: 30_000 },
  );
  const stored = await db.replies.find({ _id: { $in: ids } }).toArray();
  const table = (await page.textContent('#reply-rows')) ?? '';
  for (const r of stored) expect(table).toContain(replyText(r)!.slice(0, 20));
  // A couple more polls so that the rate and the charts have several samples.
  await page.waitForTimeout(4_500);
  expect(Number(await page.textContent('#workers'))).toBe(1);
  expect(await page.textContent('#latency')).toMatch(/^\d+$/);
  expect(await page.textContent('#error')).toBe('');
  expect(await page.locator('#chart-queue canvas').count()).toBe(1);
  expect(await page.locator('#worker-rows tr').count()).toBe(1);
  expect(errors).toEqual([]);
  const out = path.join(ROOT, 'test-output');
  await mkdir(out, { recursive: true });
  await page.screenshot({ path: path.join(out, 'dashboard.png'), fullPage: true });
});

it('shows an error and no data without a valid token', async () => {
  const base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  const page = await browser.newPage();
  await page.goto(`${base}/#token=wrong-token-0123456789`);
  await page.waitForFunction(() => (document.getElementById('error')?.textContent ?? '').includes('401'), undefined, {
    timeout: 10_000,
  });
  expect(await page.textContent('#reply-rows')).toBe('');
});
