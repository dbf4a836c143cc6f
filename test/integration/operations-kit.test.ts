import { execFileSync } from 'node:child_process';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiMetrics } from '../../src/metrics/api-metrics.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { startApiWorld } from '../helpers/api-world.js';
import { ROOT } from '../helpers/paths.js';
import { cleanup, isolatedNames, testConfig } from '../helpers/services.js';
import { QueueView } from '../../src/queue/queue-view.js';

const TOKEN = 'ops-token-0123456789abcdef';
const RULES = path.join(ROOT, 'deploy/prometheus/ava-alerts.yml');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/ava-dashboard.json');
let world: Awaited<ReturnType<typeof startApiWorld>>;
let tmp: string;
beforeAll(async () => {
  world = await startApiWorld('opskit', { AVA_API_TOKENS: `ops:${TOKEN}:enqueue+read+admin:default` });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ava-opskit-'));
});
afterAll(async () => {
  await world.close();
  await rm(tmp, { recursive: true, force: true });
});

const promtool = (...args: string[]) =>
  execFileSync('promtool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** Metric names an expression reads, histogram and summary series folded to their family. */
const metricNames = (expr: string) =>
  [...expr.matchAll(/\bava_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));

/** A real scrape of the API's /metrics once a message has been answered and a heartbeat has carried the metrics. */
async function scrape(): Promise<string> {
  await world.producer.enqueue({
    v: 1,
    messageId: 'ops-1',
    conversationId: 'ops',
    userId: 'u',
    text: 'Where is my parcel?',
  });
  await followReplies(world.database, ['ops-1'], () => undefined, 30_000);
  const body = async () =>
    (await world.api.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).body;
  await expect.poll(body, { timeout: 15_000, interval: 500 }).toMatch(/^ava_replies_total\{/m);
  return body();
}

it('has alert rules that promtool accepts and whose unit tests pass, on metrics the API really exposes', async () => {
  expect(promtool('check', 'rules', RULES)).toMatch(/SUCCESS: 5 rules found/);
  expect(promtool('test', 'rules', path.join(ROOT, 'deploy/prometheus/ava-alerts.test.yml'))).toMatch(/SUCCESS/);
  const exposed = new Set([...(await scrape()).matchAll(/^# TYPE (ava_[a-z_]+)/gm)].map((m) => m[1]));
  const used = new Set(metricNames(await readFile(RULES, 'utf8')));
  expect([...used].filter((m) => !exposed.has(m))).toEqual([]);
});

it('has a Grafana dashboard whose every query is valid PromQL on exposed metrics', async () => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
    uid: string;
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  expect(exprs.length).toBeGreaterThanOrEqual(9);
  // promtool parses PromQL in rule files: each query becomes a recording rule ($__rate_interval is Grafana's).
  const rules = {
    groups: [
      {
        name: 'dashboard',
        rules: exprs.map((expr, i) => ({
          record: `ava_dashboard_query_${i}`,
          expr: expr.replaceAll('$__rate_interval', '5m'),
        })),
      },
    ],
  };
  const file = path.join(tmp, 'dashboard-queries.yml');
  await writeFile(file, JSON.stringify(rules));
  expect(promtool('check', 'rules', file)).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
  const exposed = new Set([...(await scrape()).matchAll(/^# TYPE (ava_[a-z_]+)/gm)].map((m) => m[1]));
  expect([...new Set(exprs.flatMap(metricNames))].filter((m) => !exposed.has(m))).toEqual([]);
});

it('exposes the age of the oldest unanswered message, 0 when none is, and counts jobs waiting in every set', async () => {
  const config = testConfig(isolatedNames('oldest'));
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(config.queue.name, { connection: redis, prefix: config.queue.prefix });
  const keys = new RedisKeys(config.queue.prefix, config.queue.name);
  const producer = new MessageProducer(redis, keys, { attempts: 1, backoffMs: 100, tenant: 'acme' });
  try {
    const metrics = new ApiMetrics(new QueueView(queue, redis, keys), redis, keys.workers);
    const age = async () => Number(/^ava_queue_oldest_waiting_seconds (\S+)$/m.exec((await metrics.render()).body)![1]);
    expect(await age()).toBe(0);
    // Through the producer with fair share: the job waits in BullMQ's prioritized set, not its wait list.
    await producer.enqueue({ v: 1, messageId: 'first', conversationId: 'c', userId: 'u', text: 'hello' });
    await sleep(1_200);
    await queue.add('message', { n: 2 }, { jobId: 'second' });
    // No worker runs on this queue: the first message is the oldest, about 1.2 s old.
    expect(await age()).toBeGreaterThanOrEqual(1.2);
    expect(await age()).toBeLessThan(10);
    expect((await producer.view.counts()).waiting).toBe(2);
  } finally {
    await producer.close();
    await queue.close();
    redis.disconnect();
    await cleanup(config);
  }
});
