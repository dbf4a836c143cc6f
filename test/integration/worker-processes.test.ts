import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { spawnWorker } from '../helpers/services.js';
import { processWorld } from '../helpers/process-world.js';
import { generationAttempts } from '../helpers/generation-attempts.js';
import { replyText } from '../helpers/reply-text.js';

const opened: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (opened.length) await opened.pop()!();
});

async function setup(tag: string, overrides: Record<string, string> = {}) {
  const world = await processWorld(tag, overrides);
  opened.push(world.close);
  return world;
}

describe('worker processes', () => {
  it('keeps a liveness file fresh while it runs, measures its drain on SIGTERM, and removes the file on exit', async () => {
    const s = await setup('alive', { AVA_MAX_NEW_TOKENS: '48', AVA_BATCH_SIZE: '16' });
    const file = path.join(os.tmpdir(), `ava-alive-${process.pid}-${Date.now()}`);
    const worker = spawnWorker(s.config, { AVA_HEARTBEAT_FILE: file });
    s.workers.push(worker);
    await worker.waitFor((l) => l.msg === 'worker ready');
    const first = (await stat(file)).mtimeMs;
    expect(Date.now() - first).toBeLessThan(6_000);
    await expect.poll(async () => (await stat(file)).mtimeMs, { timeout: 8_000, interval: 250 }).toBeGreaterThan(first);
    await s.producer.enqueueMany(s.messages(64));
    await s.taken();
    const t0 = performance.now();
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    console.info(
      `worker drain on SIGTERM with a batch in flight (tiny model, 16 jobs, 48 tokens): ${Math.round(performance.now() - t0)} ms`,
    );
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });

  it('two worker processes share 200 messages with none lost and none answered twice', async () => {
    const s = await setup('two');
    s.workers.push(spawnWorker(s.config), spawnWorker(s.config, { AVA_INTRA_OP_THREADS: '0' }));
    await Promise.all(s.workers.map((w) => w.waitFor((l) => l.msg === 'worker ready')));
    const msgs = s.messages(200);
    await s.producer.enqueueMany(msgs);
    await followReplies(
      s.db,
      msgs.map((m) => m.messageId),
      () => undefined,
      120_000,
    );
    expect(await s.db.replies.countDocuments({ status: 'replied' })).toBe(200);
    // A reply is stored before its job is acknowledged: stop the workers first so that every job is.
    for (const w of s.workers) w.child.kill('SIGTERM');
    expect(await Promise.all(s.workers.map((w) => w.exited))).toEqual([0, 0]);
    expect(await s.generations(msgs.map((m) => m.messageId))).toBe(200);
    // Both took part: BullMQ records which worker took each job.
    const counts = [...(await s.completedBy()).values()];
    expect(counts).toHaveLength(2);
    expect(counts[0] + counts[1]).toBe(200);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    // Per message too: one generation attempt in its reply stream, whose text is the stored reply's.
    const attempts = await generationAttempts(
      s.redis,
      s.config.queue.prefix,
      s.config.queue.name,
      msgs.map((m) => m.messageId),
    );
    for (const m of msgs) {
      const texts = [...attempts.get(m.messageId)!.values()];
      expect(texts, m.messageId).toEqual([replyText(await s.db.replies.findOne({ _id: m.messageId }))]);
    }
  });

  it('SIGTERM in the middle of a batch finishes it, exits 0 and loses nothing', async () => {
    const s = await setup('sigterm', { AVA_MAX_NEW_TOKENS: '48', AVA_BATCH_SIZE: '8' });
    const msgs = s.messages(40);
    await s.producer.enqueueMany(msgs);
    const first = spawnWorker(s.config);
    s.workers.push(first);
    await s.taken();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    // What it took it finished: each job acknowledged, generated once and stored; the rest still wait.
    const ids = msgs.map((m) => m.messageId);
    const taken = await s.queue.getCompletedCount();
    expect(taken).toBeGreaterThan(0);
    expect(await s.generations(ids)).toBe(taken);
    expect(await s.db.replies.countDocuments({})).toBe(taken);
    expect(await s.queue.getActiveCount()).toBe(0);
    // Waiting: in BullMQ's wait list or, with fair share, its prioritized set.
    expect((await s.producer.view.counts()).waiting).toBe(40 - taken);

    const second = spawnWorker(s.config);
    s.workers.push(second);
    await followReplies(
      s.db,
      msgs.map((m) => m.messageId),
      () => undefined,
      120_000,
    );
    expect(await s.db.replies.countDocuments({})).toBe(40);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(await s.generations(ids)).toBe(40);
  });

  it('refuses to start with a clear error when the model or a service is missing', async () => {
    const s = await setup('startup');
    const noModel = spawnWorker(s.config, { AVA_MODEL: 'no-such-model' });
    expect(await noModel.exited).toBe(1);
    expect(noModel.lines.find((l) => l.level === 60)?.msg).toMatch(
      /ERR_MODEL_RESOLVE: model "no-such-model" not found.*models:forge/,
    );
    const noRedis = spawnWorker(s.config, { AVA_REDIS_URL: 'redis://ava:s3cr3t-pw@127.0.0.1:1' });
    expect(await noRedis.exited).toBe(1);
    expect(noRedis.lines.find((l) => l.level === 60)?.msg).toMatch(
      /ERR_SERVICE_UNAVAILABLE: Redis at redis:\/\/ava:\*\*\*@127.0.0.1:1 is unreachable.*services/,
    );
    // Credentials never reach the logs.
    expect(JSON.stringify(noRedis.lines)).not.toContain('s3cr3t-pw');
    const badConfig = spawnWorker(s.config, { AVA_BATCH_SIZE: 'lots' });
    expect(await badConfig.exited).toBe(1);
  });
});
