import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { OwnFerretDb } from '../helpers/ferretdb-server.js';
import { spawnWorker } from '../helpers/services.js';
import { processWorld } from '../helpers/process-world.js';
import { ROOT } from '../helpers/paths.js';
import { messageIdOfJob, messageJobId } from '../../src/queue/redis-keys.js';
import { generationAttempts } from '../helpers/generation-attempts.js';
import { replyText } from '../helpers/reply-text.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function setup(tag: string, overrides: Record<string, string> = {}) {
  const world = await processWorld(tag, overrides);
  closers.push(world.close);
  return world;
}

/** Kills a worker with SIGKILL once it has taken a batch, then starts its heir with the same settings. */
async function killMidBatchThenStartHeir(
  s: Awaited<ReturnType<typeof setup>>,
  env: Record<string, string>,
  beforeHeir: () => Promise<void> = async () => {},
) {
  const victim = spawnWorker(s.config, env);
  s.workers.push(victim);
  await s.taken();
  victim.child.kill('SIGKILL');
  await victim.exited;
  await beforeHeir();
  const heir = spawnWorker(s.config, env);
  s.workers.push(heir);
  return heir;
}

describe('fault tolerance (real worker processes)', () => {
  it('kill -9 of a worker mid-batch: another takes its jobs over and every message gets exactly one reply', async () => {
    // Short locks so that the stalled-job checker hands the dead worker's jobs over within seconds.
    const s = await setup('kill9', {
      AVA_MAX_NEW_TOKENS: '48',
      AVA_BATCH_SIZE: '8',
      AVA_LOCK_DURATION_MS: '5000',
      AVA_STALLED_INTERVAL_MS: '1000',
    });
    const env = { AVA_LOCK_DURATION_MS: '5000', AVA_STALLED_INTERVAL_MS: '1000' };
    const msgs = s.messages(40);
    await s.producer.enqueueMany(msgs);
    const queue = new Queue(s.config.queue.name, { connection: { url: s.config.redis.url } });
    await killMidBatchThenStartHeir(s, env, async () => expect(await queue.getActiveCount()).toBeGreaterThan(0));
    await followReplies(
      s.db,
      msgs.map((m) => m.messageId),
      () => undefined,
      120_000,
    );
    expect(await s.db.replies.countDocuments({})).toBe(40);
    expect(await s.db.replies.countDocuments({ status: 'replied' })).toBe(40);
    // Generations, not only documents: a message the dead worker had begun to generate is generated again by the heir
    // (two attempts at most), and each stored reply is the text of one attempt.
    const attempts = await generationAttempts(
      s.redis,
      s.config.queue.prefix,
      s.config.queue.name,
      msgs.map((m) => m.messageId),
    );
    const regenerated = msgs.filter((m) => attempts.get(m.messageId)!.size === 2).length;
    for (const m of msgs) {
      const texts = [...attempts.get(m.messageId)!.values()];
      expect(texts.length, m.messageId).toBeGreaterThanOrEqual(1);
      expect(texts.length, m.messageId).toBeLessThanOrEqual(2);
      expect(texts, m.messageId).toContain(replyText(await s.db.replies.findOne({ _id: m.messageId })));
    }
    console.info(
      `kill -9 mid-batch: ${regenerated} of 40 messages generated twice (streamed by the dead worker before it died), each stored once`,
    );
    await expect
      .poll(() => queue.getJobCounts('completed', 'failed', 'active', 'wait'), { timeout: 20_000 })
      .toEqual({ completed: 40, failed: 0, active: 0, wait: 0 });
    await queue.close();
  });

  it('a job that stalls past the limit gets a stored failed reply with ERR_STALLED; every message exactly one reply', async () => {
    // No stall allowed: the dead worker's batch goes straight to BullMQ's failed set, which the reconciler answers.
    const env = {
      AVA_LOCK_DURATION_MS: '5000',
      AVA_STALLED_INTERVAL_MS: '1000',
      AVA_MAX_STALLED_COUNT: '0',
      AVA_RECONCILE_INTERVAL_MS: '500',
    };
    const s = await setup('stalled', { AVA_MAX_NEW_TOKENS: '48', AVA_BATCH_SIZE: '8', ...env });
    const msgs = s.messages(24);
    await s.producer.enqueueMany(msgs);
    await killMidBatchThenStartHeir(s, env);
    await followReplies(
      s.db,
      msgs.map((m) => m.messageId),
      () => undefined,
      120_000,
    );
    const queue = new Queue(s.config.queue.name, { connection: { url: s.config.redis.url } });
    const failedJobs = await queue.getFailed();
    expect(failedJobs.length).toBeGreaterThan(0);
    expect(failedJobs.every((j) => /stalled more than allowable limit/.test(j.failedReason))).toBe(true);
    for (const j of failedJobs)
      expect(await s.db.replies.findOne({ _id: messageIdOfJob(j.id!) }), j.id).toMatchObject({
        status: 'failed',
        error: { code: 'ERR_STALLED' },
      });
    expect(await s.db.replies.countDocuments({})).toBe(24);
    expect(await s.db.replies.countDocuments({ status: 'replied' })).toBe(24 - failedJobs.length);
    await queue.close();
  });

  it('a Redis restart in the middle of a run loses no message', async () => {
    const own = await OwnRedis.start();
    closers.push(() => own.close());
    const s = await setup('redisrestart', { AVA_REDIS_URL: own.url, AVA_MAX_NEW_TOKENS: '48', AVA_BATCH_SIZE: '8' });
    const msgs = s.messages(120);
    await s.producer.enqueueMany(msgs);
    const worker = spawnWorker(s.config);
    s.workers.push(worker);
    await s.someStored();
    await own.down();
    // Mid-run: some replies are stored, most are not.
    expect(await s.db.replies.countDocuments({})).toBeLessThan(msgs.length / 2);
    await sleep(1_500);
    await own.up();
    await followReplies(
      s.db,
      msgs.map((m) => m.messageId),
      () => undefined,
      120_000,
    );
    expect(await s.db.replies.countDocuments({ status: 'replied' })).toBe(120);
    expect(worker.child.exitCode).toBeNull();
  });

  it('Redis killed with SIGKILL mid-run loses no enqueue a producer was told was accepted (appendfsync always)', async () => {
    const own = await OwnRedis.start('always');
    closers.push(() => own.close());
    const s = await setup('rediskill', { AVA_REDIS_URL: own.url });
    const acked: string[] = [];
    let refused = 0;
    // Four producers, each enqueueing one message at a time; an enqueue counts once its promise resolved.
    const producers = Array.from({ length: 4 }, async (_, p) => {
      for (let i = 0; i < 150; i++) {
        const messageId = `k-${p}-${i}`;
        try {
          await s.producer.enqueue({ v: 1, messageId, conversationId: `c-${p}`, userId: 'u', text: `message ${i}` });
          acked.push(messageId);
        } catch {
          refused++;
        }
      }
    });
    await expect.poll(() => acked.length, { interval: 5 }).toBeGreaterThanOrEqual(200);
    await own.kill();
    const ackedAtKill = acked.length;
    await sleep(500);
    await own.up();
    await Promise.all(producers);
    const queue = new Queue(s.config.queue.name, { connection: { url: own.url } });
    const lost = [];
    for (const id of acked) if (!(await queue.getJob(messageJobId(id)))) lost.push(id);
    await queue.close();
    expect(ackedAtKill).toBeLessThan(600);
    expect(lost).toEqual([]);
    expect(acked.length + refused).toBe(600);
  });

  it(
    'the database unreachable for 10 s in the middle of a run: jobs retry and every reply is stored once',
    { timeout: 180_000 },
    async () => {
      // A database of the test's own, frozen with SIGSTOP: connections stay open and nothing answers, as in a partition.
      const mongo = await OwnFerretDb.start();
      closers.push(() => mongo.close());
      const s = await setup('dbdown10', { AVA_MONGO_URL: mongo.url, AVA_MAX_NEW_TOKENS: '16', AVA_BATCH_SIZE: '8' });
      const msgs = s.messages(80);
      await s.producer.enqueueMany(msgs);
      const worker = spawnWorker(s.config, { AVA_MONGO_TIMEOUT_MS: '1000', AVA_MONGO_SOCKET_TIMEOUT_MS: '3000' });
      s.workers.push(worker);
      await s.someStored();
      mongo.freeze();
      await sleep(10_000);
      mongo.thaw();
      const queue = new Queue(s.config.queue.name, { connection: { url: s.config.redis.url } });
      try {
        await followReplies(
          s.db,
          msgs.map((m) => m.messageId),
          () => undefined,
          100_000,
        );
      } catch (err) {
        // Say where the missing messages are, so that a failure here can be diagnosed from the log alone.
        const counts = await queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
        const failed = (await queue.getFailed(0, 3)).map(
          (j) => `${j.id}: ${j.failedReason} (attempts ${j.attemptsMade})`,
        );
        const missing = [];
        for (const m of msgs)
          if (!(await s.db.replies.findOne({ _id: m.messageId }, { projection: { _id: 1 } })))
            missing.push(m.messageId);
        await mkdir(path.join(ROOT, 'test-output'), { recursive: true });
        await writeFile(
          path.join(ROOT, 'test-output', 'faults-dbdown10-worker.log'),
          worker.lines.map((l) => JSON.stringify(l)).join('\n'),
        );
        console.log(`missing replies: ${missing.join(', ')}; worker log in test-output/faults-dbdown10-worker.log`);
        throw new Error(
          `${(err as Error).message}; jobs ${JSON.stringify(counts)}; failed ${JSON.stringify(failed)}; worker's last lines ${JSON.stringify(worker.lines.slice(-5).map((l) => l.msg))}`,
          { cause: err },
        );
      }
      expect(await s.db.replies.countDocuments({ status: 'replied' })).toBe(80);
      expect(worker.lines.some((l) => l.msg === 'batch failed; jobs go back for retry with backoff')).toBe(true);
      await expect
        .poll(() => queue.getJobCounts('completed', 'failed'), { timeout: 30_000 })
        .toEqual({ completed: 80, failed: 0 });
      await queue.close();
      expect(worker.child.exitCode).toBeNull();
    },
  );
});
