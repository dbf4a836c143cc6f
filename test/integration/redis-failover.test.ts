import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { Database } from '../../src/storage/database.js';
import { ROOT } from '../helpers/paths.js';
import { RedisSentinelSet, SENTINEL_MASTER } from '../helpers/redis-sentinel.js';
import { OwnRedisCluster } from '../helpers/redis-cluster.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { connectRedis, redisTargetOf } from '../../src/queue/redis-connection.js';
import { ReplyStreamReader } from '../../src/queue/reply-stream-reader.js';
import { cleanup, isolatedNames, spawnWorker, testConfig, type WorkerProcess } from '../helpers/services.js';
import { stablePort, terminate, waitForPort } from '../helpers/test-ports.js';
import { replyText } from '../helpers/reply-text.js';

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
  db = await Database.connect(config.storage.url, config.storage.dbName);
  const sentinelEnv = {
    AVA_REDIS_SENTINELS: set.sentinels,
    AVA_REDIS_SENTINEL_MASTER: SENTINEL_MASTER,
    AVA_LOCK_DURATION_MS: '5000',
    AVA_STALLED_INTERVAL_MS: '1000',
  };
  worker = spawnWorker(config, sentinelEnv);
  const port = await stablePort();
  api = spawn(process.execPath, ['dist/workers/api-server.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...sentinelEnv,
      AVA_REDIS_URL: config.redis.url,
      AVA_MONGO_URL: config.storage.url,
      AVA_DB_NAME: config.storage.dbName,
      AVA_QUEUE_NAME: config.queue.name,
      AVA_API_PORT: String(port),
      AVA_API_TOKENS: `t:${TOKEN}:enqueue+read:default`,
      AVA_API_RATE_LIMIT: '100000',
      AVA_REDIS_MIN_REPLICAS: '1',
      AVA_LOG_LEVEL: 'warn',
    },
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

it(
  'fails over when the master is killed with SIGKILL mid-run: every message the API accepted gets exactly one reply',
  { timeout: 120_000 },
  async () => {
    const accepted: Array<{ id: string; at: number }> = [];
    const refused: string[] = [];
    let killedAt = 0;
    const acceptedSinceKill = () => accepted.filter((a) => killedAt && a.at > killedAt).length;
    // Until 80 are accepted before the kill and 70 after it: while the sentinels elect a new master the API refuses at
    // once (503, Retry-After), so the client keeps sending, pausing a little after each refusal, for up to a minute.
    const deadline = performance.now() + 60_000;
    for (let i = 0; acceptedSinceKill() < 70 && performance.now() < deadline; i++) {
      const id = `fo-${i}`;
      if (accepted.length === 80 && !killedAt) {
        await set.killMaster();
        killedAt = performance.now();
      }
      try {
        const res = await fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            v: 1,
            messageId: id,
            conversationId: `c-${i % 7}`,
            userId: 'u',
            text: `Message ${i}: where is my order?`,
          }),
          signal: AbortSignal.timeout(10_000),
        });
        if (res.status === 202) accepted.push({ id, at: performance.now() });
        else {
          refused.push(`${id} (${res.status})`);
          await sleep(100);
        }
      } catch (err) {
        refused.push(`${id} (${(err as Error).name})`);
      }
      await sleep(10);
    }
    expect(killedAt).toBeGreaterThan(0);
    expect(set.replicaPorts).toContain(await set.currentMasterPort());
    const after = accepted.filter((a) => a.at > killedAt);
    expect(after.length).toBeGreaterThan(60);
    // The gap in acceptances around the kill is the failover as a client sees it.
    const gapMs = Math.round(after[0].at - killedAt);
    console.info(
      `failover: ${accepted.length} accepted (${refused.length} refused or timed out: ${refused.slice(0, 20).join(', ') || 'none'}${refused.length > 20 ? ', …' : ''}), first accepted ${gapMs} ms after the kill`,
    );
    await followReplies(
      db,
      accepted.map((a) => a.id),
      () => undefined,
      90_000,
    );
    expect(await db.replies.countDocuments({ _id: { $in: accepted.map((a) => a.id) } })).toBe(accepted.length);
    // A refused enqueue promises nothing: a 503 (no replica confirmed the write within 5 s while the sentinels were
    // still re-pointing the replicas) or a client time-out may come after the job landed on the new master, and such a
    // job is answered like any other — once, since replies are keyed by messageId. So every stored reply is a
    // `replied` one for a message that was sent, and there are at least as many as were accepted.
    const stored = await db.replies.find({}, { projection: { _id: 1, status: 1 } }).toArray();
    const sent = new Set([...accepted.map((a) => a.id), ...refused.map((r) => r.split(' ')[0])]);
    expect(stored.filter((d) => !sent.has(d._id) || d.status !== 'replied')).toEqual([]);
    expect(stored.length).toBeGreaterThanOrEqual(accepted.length);
    const acceptedIds = new Set(accepted.map((a) => a.id));
    console.info(
      `replies stored: ${stored.length}; for enqueues refused but landed: ${
        stored
          .filter((d) => !acceptedIds.has(d._id))
          .map((d) => d._id)
          .join(', ') || 'none'
      }`,
    );
    expect(worker.child.exitCode).toBeNull();
    expect(api.exitCode).toBeNull();
  },
);

it(
  'runs on a Redis Cluster of three masters with the queue on a hash-tagged prefix',
  { timeout: 120_000 },
  async () => {
    const cluster = await OwnRedisCluster.start();
    const clusterConfig = testConfig(isolatedNames('cluster'), {
      AVA_QUEUE_PREFIX: '{ava}',
      AVA_REDIS_CLUSTER_NODES: cluster.nodes,
    });
    const clusterEnv = { AVA_QUEUE_PREFIX: '{ava}', AVA_REDIS_CLUSTER_NODES: cluster.nodes };
    const clusterWorker = spawnWorker(clusterConfig, clusterEnv);
    const redis = await connectRedis(redisTargetOf(clusterConfig.redis));
    const producer = new MessageProducer(redis, new RedisKeys(clusterConfig.queue.prefix, clusterConfig.queue.name), {
      attempts: 3,
      backoffMs: 100,
    });
    const reader = new ReplyStreamReader(
      redis,
      redis.duplicate(),
      new RedisKeys(clusterConfig.queue.prefix, clusterConfig.queue.name),
    );
    const clusterDb = await Database.connect(clusterConfig.storage.url, clusterConfig.storage.dbName);
    try {
      await clusterWorker.waitFor((l) => l.msg === 'worker ready');
      const ids = Array.from({ length: 60 }, (_, i) => `cl-${i}`);
      // A stream followed from before its message is enqueued: pub/sub and the streams work across the cluster.
      const streamed: string[] = [];
      const follow = await reader.follow('cl-0', undefined, {
        onEntry: ({ event }) => event.type === 'token' && streamed.push(event.text),
        onError: () => undefined,
      });
      await producer.enqueueMany(
        ids.map((id, i) => ({
          v: 1,
          messageId: id,
          conversationId: `c-${i % 5}`,
          userId: 'u',
          text: `Message ${i}: where is my order?`,
        })),
      );
      await followReplies(clusterDb, ids, () => undefined, 60_000);
      const first = replyText(await clusterDb.replies.findOne({ _id: 'cl-0' })) ?? '';
      await expect
        .poll(async () => {
          await follow.catchUp();
          return streamed.join('');
        })
        .toBe(first);
      follow.close();
      // Every key of the queue is in the slot of its hash tag.
      const slots = new Set(
        ids
          .slice(0, 5)
          .map((id) =>
            Number(
              execFileSync(
                'redis-cli',
                [
                  '-p',
                  String(cluster.ports[0]),
                  'cluster',
                  'keyslot',
                  `${clusterConfig.queue.prefix}:${clusterConfig.queue.name}:${id}`,
                ],
                { encoding: 'utf8' },
              ),
            ),
          ),
      );
      expect(slots.size).toBe(1);
      expect(clusterWorker.child.exitCode).toBeNull();
    } finally {
      clusterWorker.child.kill('SIGTERM');
      await clusterWorker.exited;
      await producer.close();
      redis.disconnect();
      await cluster.close();
      await clusterDb.db.dropDatabase();
      await clusterDb.close();
    }
  },
);
