import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplyDocument } from '../storage/reply-document.js';
import type { Database } from '../storage/database.js';
import { ReplyRepository } from '../storage/reply-repository.js';

/**
 * Calls `onReply` once for each of `messageIds` as its reply is stored, polling the database (change streams are
 * not available on every MongoDB-wire server). Resolves when all are stored; rejects after `timeoutMs`.
 */
export async function followReplies(db: Database, messageIds: readonly string[], onReply: (doc: ReplyDocument) => void, timeoutMs = 120_000): Promise<void> {
  const replies = new ReplyRepository(db);
  const pending = new Set(messageIds);
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0) {
    const docs = await replies.getMany([...pending]);
    for (const id of messageIds) {
      const doc = docs.get(id);
      if (doc && pending.delete(id)) onReply(doc);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pending.size} replies`);
    await sleep(100);
  }
}
