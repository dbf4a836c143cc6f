import { Binary, ObjectId } from 'mongodb';
import { expect, it } from 'vitest';
import { RetentionSweeper } from '../../src/pipeline/retention-sweeper.js';
import { Retention } from '../../src/storage/retention.js';
import { UploadRepository } from '../../src/storage/upload-repository.js';
import { isolatedNames, silentLog, sharedStores, testConfig } from '../helpers/services.js';

const config = testConfig(isolatedNames('retention'));
const DAY = 86_400;
const stores = sharedStores(config);

const NOW = new Date('2026-11-29T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY * 1000);

/** One document per collection for each age, ids saying their age. */
async function fill(ages: number[]) {
  for (const age of ages) {
    const at = daysAgo(age);
    const id = `age-${age}`;
    await stores.db.replies.insertOne({
      _id: id,
      tenant: 'default',
      conversationId: id,
      userId: 'u',
      status: 'replied',
      text: 't',
      finishReason: 'stop',
      model: { id: 'm', revision: 'r' },
      tokens: { prompt: 0, generated: 0 },
      timings: { queuedAt: at, startedAt: at, finishedAt: at, inferenceMs: 0 },
      createdAt: at,
    });
    await stores.db.turns.insertOne({ _id: id, tenant: 'default', conversationId: id, user: 'q', assistant: 'a', at });
    await stores.db.messages.insertOne({
      _id: id,
      tenant: 'default',
      conversationId: id,
      userId: 'u',
      status: 'processing',
      queuedAt: at,
      startedAt: at,
      attempts: 0,
    });
    await stores.db.conversations.insertOne({ _id: id, tenant: 'default', userId: 'u', createdAt: at, updatedAt: at });
    await stores.db.audio.insertOne({
      _id: id,
      messageId: id,
      voice: 'en-us',
      format: 'wav',
      textSha256: 'x',
      data: new Binary(Buffer.from('RIFF')),
      createdAt: at,
    });
  }
}
const ids = async (name: 'replies' | 'turns' | 'messages' | 'conversations' | 'audio') =>
  (
    await stores.db.db
      .collection(name)
      .find({}, { projection: { _id: 1 } })
      .toArray()
  )
    .map((d) => String(d._id))
    .sort();

it('removes what is past each collection retention and nothing else; replies are kept by default', async () => {
  await fill([1, 6, 8, 29, 31, 89, 91, 400]);
  const retention = await Retention.apply(stores.db, {
    replies: 0,
    turns: 30 * DAY,
    messages: 7 * DAY,
    conversations: 90 * DAY,
    audio: 7 * DAY,
    uploads: 0,
  });
  // FerretDB has no TTL indexes: the worker sweeps.
  expect(retention.mode).toBe('sweep');
  expect(await retention.sweep(NOW)).toEqual({ turns: 4, messages: 6, conversations: 2, audio: 6 });
  expect(await ids('audio')).toEqual(['age-1', 'age-6']);
  expect(await ids('replies')).toEqual(['age-1', 'age-29', 'age-31', 'age-400', 'age-6', 'age-8', 'age-89', 'age-91']);
  expect(await ids('turns')).toEqual(['age-1', 'age-29', 'age-6', 'age-8']);
  expect(await ids('messages')).toEqual(['age-1', 'age-6']);
  expect(await ids('conversations')).toEqual(['age-1', 'age-29', 'age-31', 'age-6', 'age-8', 'age-89']);
  // A second sweep finds nothing more; a replies retention set later applies to them too.
  expect(await retention.sweep(NOW)).toEqual({ turns: 0, messages: 0, conversations: 0, audio: 0 });
  const withReplies = await Retention.apply(stores.db, {
    replies: 30 * DAY,
    turns: 30 * DAY,
    messages: 7 * DAY,
    conversations: 90 * DAY,
    audio: 7 * DAY,
    uploads: 0,
  });
  expect((await withReplies.sweep(NOW)).replies).toBe(4);
  expect(await ids('replies')).toEqual(['age-1', 'age-29', 'age-6', 'age-8']);
});

it('sweeps in one worker at a time', async () => {
  const retention = await Retention.apply(stores.db, {
    replies: 0,
    turns: DAY,
    messages: DAY,
    conversations: DAY,
    audio: DAY,
    uploads: 0,
  });
  const lockKey = `${config.queue.prefix}:${config.queue.name}:retention-lock`;
  await stores.redis.set(lockKey, 'another worker', 'PX', 10_000);
  await fill([5]);
  await new RetentionSweeper(retention, stores.redis, lockKey, 60_000, silentLog).runOnce();
  expect(await ids('turns')).toContain('age-5');
  await stores.redis.del(lockKey);
  await new RetentionSweeper(retention, stores.redis, lockKey, 60_000, silentLog).runOnce();
  expect(await ids('turns')).not.toContain('age-5');
  expect(await stores.redis.exists(lockKey)).toBe(0);
});

it('deletes voice uploads past their retention with their chunks, and nothing newer', async () => {
  const uploads = new UploadRepository(stores.db);
  const old = await uploads.put(Buffer.alloc(600_000, 1), {
    contentType: 'audio/wav',
    messageId: 'old',
    tenant: 'default',
  });
  const retention = await Retention.apply(stores.db, {
    replies: 0,
    turns: 0,
    messages: 0,
    conversations: 0,
    audio: 0,
    uploads: 7 * DAY,
  });
  expect(retention.needsSweeps).toBe(true);
  // Uploads are stamped when stored: sweeping as if eight days had passed finds this one old.
  const later = new Date(Date.now() + 8 * DAY * 1000);
  const fresh = await uploads.put(Buffer.alloc(10, 2), {
    contentType: 'audio/wav',
    messageId: 'fresh',
    tenant: 'default',
  });
  await stores.db.db
    .collection('uploads.files')
    .updateOne({ _id: new ObjectId(fresh) }, { $set: { uploadDate: later } });
  expect(await retention.sweep(later)).toEqual({ uploads: 1 });
  expect(await uploads.get(old)).toBeNull();
  expect(await stores.db.db.collection('uploads.chunks').countDocuments({ files_id: new ObjectId(old) })).toBe(0);
  expect((await uploads.get(fresh))?.bytes.length).toBe(10);
});
