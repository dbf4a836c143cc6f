import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { MONGO_URL, spawnWorker } from '../helpers/services.js';
import { processWorld } from '../helpers/process-world.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** The wire form of `{ insert: "replies", … }`: a BSON string element named insert whose value is "replies". */
function isRepliesInsert(chunk: Buffer): boolean {
  const at = chunk.indexOf('\x02insert\x00', 0, 'latin1');
  return at >= 0 && chunk.indexOf('replies\x00', at, 'latin1') === at + 8 + 4;
}

/**
 * A worker killed with SIGKILL at a precise point of storing its batch's replies: its connection to the database
 * goes through a proxy that holds the replies insert (`request`: it has not reached the database) or the database's
 * answer to it (`response`: the replies are stored, the worker does not know, no job is acknowledged). Then the held
 * bytes are released late or dropped, and a second worker takes the dead one's jobs over.
 */
async function killWhileStoring(tag: string, hold: 'request' | 'response', then: 'release' | 'drop') {
  const proxy = await TcpProxy.start(Number(new URL(MONGO_URL).port || 27017));
  closers.push(() => proxy.close());
  const env = { AVA_LOCK_DURATION_MS: '5000', AVA_STALLED_INTERVAL_MS: '1000', AVA_BATCH_WAIT_MS: '500' };
  const s = await processWorld(tag, { AVA_BATCH_SIZE: '16', AVA_MAX_NEW_TOKENS: '8', ...env });
  closers.push(s.close);
  const msgs = s.messages(16);
  await s.producer.enqueueMany(msgs);
  const caught = proxy.holdAt(isRepliesInsert, hold);
  const victim = spawnWorker(s.config, {
    ...env,
    AVA_MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
  });
  s.workers.push(victim);
  const held = await caught;
  const storedBeforeKill = async () => s.db.replies.countDocuments({});
  if (hold === 'response') await expect.poll(storedBeforeKill, { timeout: 10_000 }).toBe(16);
  else expect(await storedBeforeKill()).toBe(0);
  victim.child.kill('SIGKILL');
  await victim.exited;
  // Killed before acknowledging anything; it had generated every message of its batch.
  const ids = msgs.map((m) => m.messageId);
  expect(await s.queue.getCompletedCount()).toBe(0);
  const victimGenerated = await s.generations(ids);
  expect(victimGenerated).toBe(16);
  if (then === 'release') held.release();
  else held.drop();
  if (hold === 'request' && then === 'release') await expect.poll(storedBeforeKill, { timeout: 10_000 }).toBe(16);

  const before = await s.db.replies.find({}).sort({ _id: 1 }).toArray();
  const heir = spawnWorker(s.config, env);
  s.workers.push(heir);
  await followReplies(
    s.db,
    msgs.map((m) => m.messageId),
    () => undefined,
    60_000,
  );
  // Replies stored before the heir came are the ones kept: the heir's duplicates were refused by their key.
  if (before.length > 0) expect(await s.db.replies.find({}).sort({ _id: 1 }).toArray()).toEqual(before);
  const queue = new Queue(s.config.queue.name, {
    connection: { url: s.config.redis.url },
    prefix: s.config.queue.prefix,
  });
  await expect
    .poll(() => queue.getJobCounts('completed', 'failed', 'active', 'wait'), { timeout: 30_000 })
    .toEqual({ completed: 16, failed: 0, active: 0, wait: 0 });
  await queue.close();
  expect(await s.db.replies.countDocuments({})).toBe(16);
  expect(await s.db.replies.countDocuments({ status: 'replied' })).toBe(16);
  expect(await s.db.turns.countDocuments({})).toBe(16);
  return { heirGenerated: (await s.generations(ids)) - victimGenerated };
}

describe('a worker killed with SIGKILL while storing a batch (real worker processes)', () => {
  it('after its replies are stored, before any job is acknowledged: the heir keeps them', async () => {
    // The dead worker never marked its jobs, so the heir answers them again; the database keeps the first replies.
    const { heirGenerated } = await killWhileStoring('killstored', 'response', 'release');
    expect(heirGenerated).toBe(16);
  });

  it('during the store, the insert never reaching the database: the heir generates and stores each reply once', async () => {
    const { heirGenerated } = await killWhileStoring('killstoring', 'request', 'drop');
    expect(heirGenerated).toBe(16);
  });

  it('during the store, the insert landing after the worker died: the heir keeps the replies that landed', async () => {
    const { heirGenerated } = await killWhileStoring('killlate', 'request', 'release');
    expect(heirGenerated).toBe(16);
  });
});
