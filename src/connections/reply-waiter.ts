import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logging/logger.js';
import { ReplyDoneSignal } from '../queue/reply-done-signal.js';
import type { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import type { Database } from '../storage/database.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import { ReplyRepository } from '../storage/reply-repository.js';

/** Period of the database read that backs the reply streams up (a `done` lost with Redis's data, a reconciled reply). */
const FALLBACK_READ_MS = 2_000;
/** Period of the database read when there are no reply streams to wake the wait. */
const POLL_MS = 100;

/** What waiting for replies reads: the stored replies and, when there are any, the workers' reply streams. */
export interface ReplyWaitDeps {
  replies: ReplyRepository;
  streams?: ReplyStreamReader;
}

/**
 * The one way AVA waits for stored replies (the API's long-polls, `/generate` and OpenAI routes, the CLI): calls
 * `onReply` once for each of `messageIds` as its reply is stored, and resolves when all are or `waitMs` has passed,
 * with the ids still pending. The replies are read first (a reply already stored costs one read and no subscription);
 * then, with `streams`, each message's reply stream wakes the wait when its worker stores the reply (the stream's
 * `done` entry), with a read every 2 s as the fallback; without, the database is read every 100 ms. The database
 * decides: a stream only says when to look. A stream that fails is reported in `streamError`, and the reads go on.
 */
export async function waitForReplies(
  deps: ReplyWaitDeps,
  messageIds: readonly string[],
  onReply: (doc: ReplyDocument) => void,
  waitMs: number,
): Promise<{ pending: string[]; streamError?: unknown }> {
  const pending = new Set(messageIds);
  const deadline = Date.now() + waitMs;
  const check = async () => {
    const docs = await deps.replies.getMany([...pending]);
    for (const id of messageIds) {
      const doc = docs.get(id);
      if (doc && pending.delete(id)) onReply(doc);
    }
  };
  await check();
  if (pending.size === 0 || waitMs <= 0) return { pending: [...pending] };
  const signal = deps.streams ? await ReplyDoneSignal.follow(deps.streams, [...pending]) : undefined;
  try {
    for (;;) {
      // Read again once following: a reply stored between the first read and the subscription is found here.
      await check();
      const left = deadline - Date.now();
      if (pending.size === 0 || left <= 0) return { pending: [...pending], streamError: signal?.error };
      if (signal) await signal.wait(Math.min(FALLBACK_READ_MS, left));
      else await sleep(Math.min(POLL_MS, left));
    }
  } finally {
    signal?.close();
  }
}

/** One message's stored reply, waiting up to `waitMs` for it (see {@link waitForReplies}); null when none came. */
export async function waitForReply(
  deps: ReplyWaitDeps & { log: Logger },
  messageId: string,
  waitMs: number,
): Promise<ReplyDocument | null> {
  let reply: ReplyDocument | null = null;
  const { streamError } = await waitForReplies(deps, [messageId], (doc) => (reply = doc), waitMs);
  if (streamError)
    deps.log.warn({ err: streamError, messageId }, 'reading a reply stream failed; the database was read instead');
  return reply;
}

/** Every reply of `messageIds` from the database, as {@link waitForReplies}; throws when some are missing after `timeoutMs`. */
export async function followReplies(
  db: Database,
  messageIds: readonly string[],
  onReply: (doc: ReplyDocument) => void,
  timeoutMs: number,
  streams?: ReplyStreamReader,
): Promise<void> {
  const deps = { replies: new ReplyRepository(db), ...(streams ? { streams } : {}) };
  const { pending, streamError } = await waitForReplies(deps, messageIds, onReply, timeoutMs);
  if (pending.length === 0) return;
  const cause = streamError ? ` (reply streams failed: ${(streamError as Error).message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${pending.length} replies${cause}`, {
    cause: streamError,
  });
}
