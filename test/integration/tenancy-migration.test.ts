import { expect, it } from 'vitest';
import { DEFAULT_TENANT } from '../../src/contract/scoped-key.js';
import { ConversationRepository } from '../../src/storage/conversation-repository.js';
import { ReplyRepository } from '../../src/storage/reply-repository.js';
import { TenancyMigration } from '../../src/storage/tenancy-migration.js';
import { isolatedNames, sharedStores, testConfig } from '../helpers/services.js';

const config = testConfig(isolatedNames('tenancy'));
const stores = sharedStores(config);
const at = new Date('2026-11-01T10:00:00Z');

it('gives what was stored before tenancy to the default tenant once, where its reads find it', async () => {
  const db = stores.db.db;
  // As an earlier version stored them: no tenant field.
  await db.collection('replies').insertOne({
    _id: 'old-1' as never,
    conversationId: 'old-conv',
    userId: 'u',
    status: 'replied',
    text: 'stored before tenancy',
    model: { id: 'm', revision: 'r' },
    tokens: { prompt: 0, generated: 0 },
    timings: { queuedAt: at, startedAt: at, finishedAt: at, inferenceMs: 0 },
    createdAt: at,
  });
  await db.collection('turns').insertOne({
    _id: 'old-1' as never,
    conversationId: 'old-conv',
    user: 'q',
    assistant: 'stored before tenancy',
    at,
    seq: at.getTime() * 1000,
  });
  await db
    .collection('conversations')
    .insertOne({ _id: 'old-conv' as never, userId: 'u', createdAt: at, updatedAt: at });
  // Connecting ran it once already (on an empty database); the record of that run is what keeps it from running again.
  await stores.db.meta.deleteOne({ _id: 'migration:tenancy-v1' });
  expect(await new TenancyMigration(stores.db).run()).toBe(3);
  expect(await new TenancyMigration(stores.db).run()).toBe(0);
  for (const name of ['replies', 'turns', 'conversations'])
    expect(await db.collection(name).distinct('tenant'), name).toEqual([DEFAULT_TENANT]);
  // The default tenant's keys are the ids themselves: its reads find the old documents as they are.
  const replies = new ReplyRepository(stores.db);
  expect((await replies.inConversation('old-conv', 10)).map((r) => r._id)).toEqual(['old-1']);
  const conversation = await new ConversationRepository(stores.db, { maxTurns: 10, maxChars: 10_000 }).get('old-conv');
  expect(conversation?.turns.map((t) => t.assistant)).toEqual(['stored before tenancy']);
});
