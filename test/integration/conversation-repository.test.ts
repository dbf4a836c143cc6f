import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConversationRepository } from '../../src/storage/conversation-repository.js';
import { Database } from '../../src/storage/database.js';
import { cleanup, isolatedNames, testConfig } from '../helpers/services.js';

const config = testConfig(isolatedNames('conv'));
let db: Database;
beforeAll(async () => {
  db = await Database.connect(config.mongoUrl, config.dbName);
});
afterAll(async () => {
  await db.close();
  await cleanup(config);
});

const turn = (id: string, user = `q${id}`, assistant = `a${id}`) => ({ messageId: id, user, assistant, at: new Date() });

it('keeps the most recent turns within the count and character bounds', async () => {
  const repo = new ConversationRepository(db, { maxTurns: 3, maxChars: 1000 });
  for (let i = 0; i < 5; i++) await repo.append('count', 'u', [turn(String(i))]);
  expect((await repo.get('count'))!.turns.map((t) => t.messageId)).toEqual(['2', '3', '4']);
  // Appending never reads; the worker's history read prunes, once a conversation holds twice the bound.
  expect((await repo.recentTurns(['count'], { prune: true })).get('count')!.map((t) => t.messageId)).toEqual(['2', '3', '4']);
  expect(await db.turns.countDocuments({ conversationId: 'count' })).toBe(5);
  await repo.append('count', 'u', [turn('5')]);
  expect((await repo.recentTurns(['count'], { prune: true })).get('count')!.map((t) => t.messageId)).toEqual(['3', '4', '5']);
  expect(await db.turns.countDocuments({ conversationId: 'count' })).toBe(3);
  const byChars = new ConversationRepository(db, { maxTurns: 10, maxChars: 25 });
  await byChars.append('chars', 'u', [turn('a', 'x'.repeat(10), 'y'.repeat(10))]);
  await byChars.append('chars', 'u', [turn('b', 'x'.repeat(5), 'y'.repeat(5))]);
  await byChars.append('chars', 'u', [turn('c', 'x'.repeat(5), 'y'.repeat(5))]);
  expect((await byChars.get('chars'))!.turns.map((t) => t.messageId)).toEqual(['b', 'c']);
});

it('never adds a turn twice and loses none under concurrent appends', async () => {
  const repo = new ConversationRepository(db, { maxTurns: 100, maxChars: 100_000 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => repo.append('busy', 'u', [turn(`m${i}`)])));
  await repo.append('busy', 'u', [turn('m3')]);
  const doc = await repo.get('busy');
  expect(doc!.turns.map((t) => t.messageId).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
  const recent = await repo.recentTurns(['busy', 'nobody']);
  expect(recent.get('busy')).toHaveLength(10);
  expect(recent.has('nobody')).toBe(false);
});
