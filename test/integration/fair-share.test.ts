import { afterAll, beforeAll, expect, it } from 'vitest';
import { scopedKey } from '../../src/contract/scoped-key.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { startApiWorld } from '../helpers/api-world.js';
import { CountingGenerator } from '../helpers/counting-generator.js';

const BATCH = 8;
const BACKLOG = 120;
let world: Awaited<ReturnType<typeof startApiWorld>>;
let counting: CountingGenerator;

beforeAll(async () => {
  world = await startApiWorld(
    'fair',
    { AVA_BATCH_SIZE: String(BATCH), AVA_MAX_INFLIGHT_BATCHES: '2', AVA_MAX_NEW_TOKENS: '1' },
    (g) => (counting = new CountingGenerator(g)),
  );
}, 120_000);
afterAll(async () => world?.close());

/**
 * Tenant A enqueues a backlog while the worker is held inside its first batch, then tenant B sends one message; on
 * release, returns how many of A's messages were generated before B's (counted in the prompts the model was given).
 */
async function aheadOfB(fairShare: boolean, run: string): Promise<number> {
  const producer = (tenant: string) =>
    new MessageProducer(world.redis, world.keys, { attempts: 3, backoffMs: 100, tenant, fairShare });
  const [a, b] = [producer(`a-${run}`), producer(`b-${run}`)];
  const text = (who: string, i: number) => `I like turtles ${run} ${who}#${i}.`;
  let release = () => undefined as void;
  counting.hold = new Promise<void>((r) => (release = r));
  const before = counting.prompts.length;
  try {
    await a.enqueue({ v: 1, messageId: 'a-first', conversationId: 'a-c-first', userId: 'u', text: text('a', -1) });
    // The worker has taken a batch and waits in it.
    await expect.poll(() => counting.calls.length > 0 && counting.prompts.length > before).toBe(true);
    await a.enqueueMany(
      Array.from({ length: BACKLOG }, (_, i) => ({
        v: 1 as const,
        messageId: `a-${i}`,
        conversationId: `a-c-${i}`,
        userId: 'u',
        text: text('a', i),
      })),
    );
    await b.enqueue({ v: 1, messageId: 'b-1', conversationId: 'b-c', userId: 'u', text: text('b', 1) });
  } finally {
    release();
    counting.hold = undefined;
  }
  await followReplies(
    world.database,
    [scopedKey(`b-${run}`, 'b-1'), ...Array.from({ length: BACKLOG }, (_, i) => scopedKey(`a-${run}`, `a-${i}`))],
    () => undefined,
    60_000,
  );
  await Promise.all([a.close(), b.close()]);
  const prompts = counting.prompts.slice(before);
  const bAt = prompts.findIndex((p) => p.includes(text('b', 1)));
  expect(bAt).toBeGreaterThan(0);
  return prompts.slice(0, bAt).filter((p) => p.includes(`turtles ${run} a#`)).length;
}

it("takes tenants in turn: another tenant's message waits about a batch behind a backlog, not for all of it", async () => {
  const fair = await aheadOfB(true, 'on');
  const unfair = await aheadOfB(false, 'off');
  console.log(
    `of ${BACKLOG} backlogged messages of tenant A, ${fair} went before B's with fair share, ${unfair} without`,
  );
  // With fair share only the batches already taken (at most two in flight, the held one included) go before B.
  expect(fair).toBeLessThanOrEqual(2 * BATCH);
  // First come, first served: B waits for nearly the whole backlog.
  expect(unfair).toBeGreaterThanOrEqual(BACKLOG - 2 * BATCH);
}, 180_000);
