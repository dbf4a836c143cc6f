import { setTimeout as sleep } from 'node:timers/promises';
import { ReplyDoneSignal } from '../queue/reply-done-signal.js';
import type { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import type { Database } from '../storage/database.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import { ReplyRepository } from '../storage/reply-repository.js';

/** Period of the database read that backs the reply streams up (a `done` lost with Redis's data, a reconciled reply). */
const FALLBACK_READ_MS = 2_000;
/** Period of the database read when there are no reply streams to wake the wait. */
const POLL_MS = 100;

/**
 * Calls `onReply` once for each of `messageIds` as its reply is stored; resolves when all are, rejects after
 * `timeoutMs`. With `streams`, each message's reply stream wakes the wait when its worker stores the reply (the
 * stream's `done` entry), and the database is read then and every 2 s as the fallback; without, the database is read
 * every 100 ms. The database decides: a stream only says when to look.
 */
export async function followReplies(
  db: Database,
  messageIds: readonly string[],
  onReply: (doc: ReplyDocument) => void,
  timeoutMs = 120_000,
  streams?: ReplyStreamReader,
): Promise<void> {
  const replies = new ReplyRepository(db);
  const pending = new Set(messageIds);
  const deadline = Date.now() + timeoutMs;
  const signal = streams ? await ReplyDoneSignal.follow(streams, messageIds) : undefined;
  try {
    while (pending.size > 0) {
      const docs = await replies.getMany([...pending]);
      for (const id of messageIds) {
        const doc = docs.get(id);
        if (doc && pending.delete(id)) onReply(doc);
      }
      if (pending.size === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        const cause = signal?.error ? ` (reply streams failed: ${(signal.error as Error).message})` : '';
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${pending.size} replies${cause}`, {
          cause: signal?.error,
        });
      }
      if (signal) await signal.wait(Math.min(FALLBACK_READ_MS, left));
      else await sleep(Math.min(POLL_MS, left));
    }
  } finally {
    signal?.close();
  }
}
