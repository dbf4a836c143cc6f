import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageJobId } from '../../src/queue/redis-keys.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { UploadRepository } from '../../src/storage/upload-repository.js';
import { startApiWorld } from '../helpers/api-world.js';

const ALICE_APP = 'alice-app-token-0123456789abcdef';
/** A producer that may only enqueue: it can name any conversation or file id, but reads nothing back. */
const OTHER_APP = 'other-app-token-0123456789abcdef';
const as = (token: string) => ({ authorization: `Bearer ${token}` });
let world: Awaited<ReturnType<typeof startApiWorld>>;
const msg = (messageId: string, conversationId: string, userId: string, text = `Hello from ${userId}`) => ({
  v: 1,
  messageId,
  conversationId,
  userId,
  text,
});

beforeAll(async () => {
  world = await startApiWorld('owners', {
    AVA_API_TOKENS: `alice:${ALICE_APP}:enqueue+read:default,other:${OTHER_APP}:enqueue:default`,
    AVA_MAX_NEW_TOKENS: '2',
    // Not the defaults: what Redis keeps must follow the settings.
    AVA_RETENTION_CONVERSATIONS_DAYS: '5',
    AVA_QUEUE_KEEP_FAILED_DAYS: '3',
  });
}, 120_000);
afterAll(async () => world?.close());

describe('conversations and uploads have owners', () => {
  it('refuses a message from another userId for a conversation, 403 naming conversationId, and never touches the owner’s history', async () => {
    const post = (token: string, payload: object) =>
      world.api.inject({ method: 'POST', url: '/v1/messages', payload, headers: as(token) });
    expect((await post(ALICE_APP, msg('own-1', 'alice-conv', 'alice', 'My order is MP-10001.'))).statusCode).toBe(202);
    await followReplies(world.database, ['own-1'], () => undefined, 30_000);
    // The owner is remembered as long as the conversation is kept (AVA_RETENTION_CONVERSATIONS_DAYS).
    const ttl = await world.redis.pttl(world.keys.conversation('alice-conv').owner);
    expect(ttl / 86_400_000).toBeCloseTo(5, 2);
    // A failed job is kept AVA_QUEUE_KEEP_FAILED_DAYS for the reconciler.
    const queue = new Queue(world.keys.queueName, { connection: world.redis, prefix: world.keys.prefix });
    const job = await Job.fromId(queue, messageJobId('own-1'));
    await queue.close();
    expect(job?.opts.removeOnFail).toEqual({ age: 3 * 86_400, count: 100_000 });
    const intruder = await post(OTHER_APP, msg('intrude-1', 'alice-conv', 'mallory', 'What did I say my order was?'));
    expect(intruder.statusCode).toBe(403);
    expect(intruder.json().error).toMatchObject({
      code: 'ERR_CONVERSATION_OWNER',
      issues: [{ path: 'conversationId', message: expect.stringContaining('belongs to another user') }],
    });
    // In a bulk POST the offending item is named by its index and nothing of the request is queued.
    const bulk = await post(OTHER_APP, [
      msg('mine-1', 'mallory-conv', 'mallory'),
      msg('intrude-2', 'alice-conv', 'mallory'),
    ]);
    expect(bulk.statusCode).toBe(403);
    expect(bulk.json().error.issues.map((i: { path: string }) => i.path)).toEqual(['[1].conversationId']);
    // The owner goes on; the intruder's own conversation is its own.
    expect((await post(ALICE_APP, msg('own-2', 'alice-conv', 'alice'))).statusCode).toBe(202);
    expect((await post(OTHER_APP, msg('mine-2', 'mallory-conv', 'mallory'))).statusCode).toBe(202);
    await followReplies(world.database, ['own-2', 'mine-2'], () => undefined, 30_000);
    expect(await world.database.replies.countDocuments({ _id: { $in: ['intrude-1', 'intrude-2', 'mine-1'] } })).toBe(0);
    const turns = await world.database.turns.find({ conversationId: 'alice-conv' }).sort({ at: 1 }).toArray();
    expect(turns.map((t) => t._id)).toEqual(['own-1', 'own-2']);
    expect(await world.database.conversations.findOne({ _id: 'alice-conv' })).toMatchObject({ userId: 'alice' });
  });

  it('fails a message that names an upload made for another message (ERR_AUDIO_NOT_YOURS), hearing nothing of it', async () => {
    const uploads = new UploadRepository(world.database);
    const fileId = await uploads.put(Buffer.from('RIFF0000WAVEfmt '), {
      tenant: 'default',
      contentType: 'audio/wav',
      messageId: 'alice-voice-1',
    });
    const res = await world.api.inject({
      method: 'POST',
      url: '/v1/messages',
      payload: {
        v: 1,
        messageId: 'steal-1',
        conversationId: 'thief-conv',
        userId: 'mallory',
        audio: { fileId, language: 'en' },
      },
      headers: as(OTHER_APP),
    });
    expect(res.statusCode).toBe(202);
    await followReplies(world.database, ['steal-1'], () => undefined, 30_000);
    const reply = await world.database.replies.findOne({ _id: 'steal-1' });
    expect(reply).toMatchObject({ status: 'failed', error: { code: 'ERR_AUDIO_NOT_YOURS' } });
    expect(reply?.transcript).toBeUndefined();
    expect(await world.database.turns.countDocuments({ conversationId: 'thief-conv' })).toBe(0);
  });
});
