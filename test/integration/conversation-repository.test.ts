import { expect, it } from 'vitest';
import { ConversationRepository } from '../../src/storage/conversation-repository.js';
import { RecentTurnsCache } from '../../src/storage/recent-turns-cache.js';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { isolatedNames, sharedStores, testConfig } from '../helpers/services.js';

const config = testConfig(isolatedNames('conv'));
const keys = new RedisKeys(config.queue.prefix, config.queue.name);
const stores = sharedStores(config);

let at = Date.UTC(2026, 10, 29);
const turn = (id: string, user = `q${id}`, assistant = `a${id}`) => ({
  messageId: id,
  user,
  assistant,
  at: new Date(at++),
});
const repoOf = (maxTurns: number, maxChars: number, ttlSeconds = 3600) =>
  new ConversationRepository(
    stores.db,
    { maxTurns, maxChars },
    new RecentTurnsCache(stores.redis, { keysOf: (id) => keys.history(id), maxTurns, ttlSeconds }),
  );
const ids = (turns: ReadonlyArray<{ messageId: string }> | undefined) => (turns ?? []).map((t) => t.messageId);

it('gives prompts the newest turns in order within the count and character bounds, from Redis', async () => {
  const repo = repoOf(3, 1000);
  for (let i = 0; i < 5; i++) await repo.append('count', 'u', [turn(String(i))]);
  expect(ids((await repo.history(['count'])).get('count'))).toEqual(['2', '3', '4']);
  expect(ids((await repo.get('count'))!.turns)).toEqual(['2', '3', '4']);
  // The database keeps every turn (retention removes old ones); Redis keeps the bound.
  expect(await stores.db.turns.countDocuments({ conversationId: 'count' })).toBe(5);
  expect(await stores.redis.zcard(keys.history('count').order)).toBe(3);
  expect(await stores.redis.hlen(keys.history('count').turns)).toBe(3);
  expect(await stores.redis.ttl(keys.history('count').turns)).toBeGreaterThan(3500);
  const byChars = repoOf(10, 25);
  await byChars.append('chars', 'u', [turn('a', 'x'.repeat(10), 'y'.repeat(10))]);
  await byChars.append('chars', 'u', [turn('b', 'x'.repeat(5), 'y'.repeat(5))]);
  await byChars.append('chars', 'u', [turn('c', 'x'.repeat(5), 'y'.repeat(5))]);
  expect(ids((await byChars.history(['chars'])).get('chars'))).toEqual(['b', 'c']);
  expect(ids((await byChars.get('chars'))!.turns)).toEqual(['b', 'c']);
});

it('never adds a turn twice, loses none under concurrent appends, and keeps turns in time order', async () => {
  const repo = repoOf(100, 100_000);
  const turns = Array.from({ length: 10 }, (_, i) => turn(`m${i}`));
  await Promise.all([...turns].reverse().map((t) => repo.append('busy', 'u', [t])));
  // A re-delivered batch appends its turns again: nothing changes.
  await repo.append('busy', 'u', [turns[3], turns[7]]);
  const history = await repo.history(['busy', 'nobody']);
  expect(ids(history.get('busy'))).toEqual(turns.map((t) => t.messageId));
  expect(history.get('busy')![4]).toEqual(turns[4]);
  expect(history.has('nobody')).toBe(false);
  expect(ids((await repo.get('busy'))!.turns)).toEqual(turns.map((t) => t.messageId));
  expect(await stores.db.turns.countDocuments({ conversationId: 'busy' })).toBe(10);
});

it('answers a conversation Redis lost without history, keeps every turn in the database, and builds it up again', async () => {
  const repo = repoOf(4, 10_000);
  await repo.append('lost', 'u', [turn('l1'), turn('l2')]);
  expect(ids((await repo.history(['lost'])).get('lost'))).toEqual(['l1', 'l2']);
  await stores.redis.del(keys.history('lost').order, keys.history('lost').turns);
  expect((await repo.history(['lost'])).has('lost')).toBe(false);
  expect(ids((await repo.get('lost'))!.turns)).toEqual(['l1', 'l2']);
  await repo.append('lost', 'u', [turn('l3')]);
  expect(ids((await repo.history(['lost'])).get('lost'))).toEqual(['l3']);
  expect(await stores.db.turns.countDocuments({ conversationId: 'lost' })).toBe(3);
});

it('orders turns accepted within one millisecond by their places, not their ids, in Redis and the database', async () => {
  const repo = repoOf(10, 10_000);
  const sameMs = new Date(Date.UTC(2026, 11, 4));
  const placed = ['9', '10', '100', '11'].map((id, k) => ({
    messageId: id,
    user: `q${id}`,
    assistant: `a${id}`,
    at: sameMs,
    seq: sameMs.getTime() * 1000 + k,
  }));
  await Promise.all([...placed].reverse().map((t) => repo.append('tied', 'u', [t])));
  expect(ids((await repo.history(['tied'])).get('tied'))).toEqual(['9', '10', '100', '11']);
  expect(ids((await repo.get('tied'))!.turns)).toEqual(['9', '10', '100', '11']);
  expect((await repo.history(['tied'])).get('tied')![1]).toEqual(placed[1]);
});
