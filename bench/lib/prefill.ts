import type { Database } from '../../src/storage/database.js';

/** Documents per insertMany while pre-filling. */
const CHUNK = 10_000;

/**
 * Stores `count` messages' worth of documents as a long-running deployment would hold them: a reply, a turn and a
 * processing record per message, and their conversations (one per 20 messages), bulk-inserted in chunks. Ids never
 * collide with a benchmark run's. Calls `onProgress` with the messages stored so far.
 */
export async function prefillStore(db: Database, count: number, onProgress: (done: number) => void): Promise<void> {
  const base = Date.now() - 30 * 24 * 3600_000;
  for (let start = 0; start < count; start += CHUNK) {
    const n = Math.min(CHUNK, count - start);
    const ids = Array.from({ length: n }, (_, k) => start + k);
    const at = (i: number) => new Date(base + i * 1000);
    const conversationId = (i: number) => `pre-c-${Math.floor(i / 20)}`;
    await Promise.all([
      db.replies.insertMany(
        ids.map((i) => ({
          _id: `pre-${i}`,
          tenant: 'default',
          conversationId: conversationId(i),
          userId: `pre-u-${i % 997}`,
          status: 'replied' as const,
          text: 'Thank you for your message. Your order is on its way.',
          finishReason: 'stop' as const,
          intent: 'unknown',
          model: { id: 'prefill', revision: 'none' },
          tokens: { prompt: 40, generated: 8 },
          timings: { queuedAt: at(i), startedAt: at(i), finishedAt: at(i), inferenceMs: 1 },
          createdAt: at(i),
        })),
        { ordered: false },
      ),
      db.turns.insertMany(
        ids.map((i) => ({
          _id: `pre-${i}`,
          tenant: 'default',
          conversationId: conversationId(i),
          user: `Message ${i}: where is my order?`,
          assistant: 'Thank you for your message.',
          intent: 'unknown',
          at: at(i),
        })),
        { ordered: false },
      ),
      db.messages.insertMany(
        ids.map((i) => ({
          _id: `pre-${i}`,
          tenant: 'default',
          conversationId: conversationId(i),
          userId: `pre-u-${i % 997}`,
          status: 'processing' as const,
          queuedAt: at(i),
          startedAt: at(i),
          attempts: 0,
        })),
        { ordered: false },
      ),
    ]);
    // CHUNK is a multiple of 20, so no conversation spans two chunks.
    const conversations = [...new Set(ids.map(conversationId))];
    await db.conversations.insertMany(
      conversations.map((_id) => ({
        _id,
        tenant: 'default',
        userId: 'pre-u',
        createdAt: new Date(base),
        updatedAt: new Date(base),
      })),
      { ordered: false },
    );
    onProgress(start + n);
  }
}
