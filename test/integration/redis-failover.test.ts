import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followReplies } from '../../src/cli/follow-replies.js';
import { Database } from '../../src/storage/database.js';
import { ROOT } from '../helpers/paths.js';
import { RedisSentinelSet, SENTINEL_MASTER } from '../helpers/redis-sentinel.js';
import { cleanup, isolatedNames, spawnWorker, testConfig, type WorkerProcess } from '../helpers/services.js';
import { stablePort, terminate, waitForPort } from '../helpers/test-ports.js';

const TOKEN = 'failover-token-0123456789abcdef';
let set: RedisSentinelSet;
let config: ReturnType<typeof testConfig>;
let db: Database;
let api: ChildProcess;
let worker: WorkerProcess;
let base: string;

beforeAll(async () => {
  set = await RedisSentinelSet.start();
  config = testConfig(isolatedNames('failover'), { AVA_REDIS_URL: `redis://127.0.0.1:${set.masterPort}` });
  db = await Database.connect(config.mongoUrl, config.dbName);
  const sentinelEnv = { AVA_REDIS_SENTINELS: set.sentinels, AVA_REDIS_SENTINEL_MASTER: SENTINEL_MASTER, AVA_LOCK_DURATION_MS: '5000', AVA_STALLED_INTERVAL_MS: '1000' };
  worker = spawnWorker(config, sentinelEnv);
  const port = await stablePort();
  api = spawn(process.execPath, ['--import', 'tsx', 'workers/api-server.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...sentinelEnv, AVA_REDIS_URL: config.redisUrl, AVA_MONGO_URL: config.mongoUrl, AVA_DB_NAME: config.dbName, AVA_QUEUE_NAME: config.queueName, AVA_API_PORT: String(port), AVA_API_TOKENS: `t:${TOKEN}:enqueue+read`, AVA_API_RATE_LIMIT: '100000', AVA_REDIS_MIN_REPLICAS: '1', AVA_LOG_LEVEL: 'warn' },
    stdio: 'ignore',
  });
  base = `http://127.0.0.1:${port}`;
  expect(await waitForPort(port, 30_000)).toBe(true);
  await worker.waitFor((l) => l.msg === 'worker ready');
});
afterAll(async () => {
  await terminate(api);
  if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
  await worker.exited;
  await db.close();
  await set.close();
  // The queue lived on the sentinel set's servers, now gone; the database is the shared one.
  await cleanup(config);
});

it('fails over when the master is killed with SIGKILL mid-run: every message the API accepted gets exactly one reply', { timeout: 120_000 }, async () => {
  const accepted: Array<{ id: string; at: number }> = [];
  let refused = 0;
  let killedAt = 0;
  for (let i = 0; i < 200; i++) {
    const id = `fo-${i}`;
    if (accepted.length === 80 && !killedAt) {
      await set.killMaster();
      killedAt = performance.now();
    }
    try {
      const res = await fetch(`${base}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ v: 1, messageId: id, conversationId: `c-${i % 7}`, userId: 'u', text: `Message ${i}: where is my order?` }),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status === 202) accepted.push({ id, at: performance.now() });
      else refused++;
    } catch {
      refused++;
    }
    await sleep(10);
  }
  expect(killedAt).toBeGreaterThan(0);
  expect(set.replicaPorts).toContain(await set.currentMasterPort());
  const after = accepted.filter((a) => a.at > killedAt);
  expect(after.length).toBeGreaterThan(60);
  // The gap in acceptances around the kill is the failover as a client sees it.
  const gapMs = Math.round(after[0].at - killedAt);
  console.info(`failover: ${accepted.length} accepted (${refused} refused or timed out), first accepted ${gapMs} ms after the kill`);
  await followReplies(db, accepted.map((a) => a.id), () => undefined, 90_000);
  expect(await db.replies.countDocuments({ _id: { $in: accepted.map((a) => a.id) } })).toBe(accepted.length);
  expect(await db.replies.countDocuments({ status: 'replied' })).toBe(accepted.length);
  expect(worker.child.exitCode).toBeNull();
  expect(api.exitCode).toBeNull();
});
