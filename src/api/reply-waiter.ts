import type { Logger } from '../logging/logger.js';
import { ReplyDoneSignal } from '../queue/reply-done-signal.js';
import type { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import type { ReplyRepository } from '../storage/reply-repository.js';

/** Period of the database read that backs the stream up (a `done` lost with Redis's data, a reconciled reply). */
const FALLBACK_READ_MS = 2_000;

/** What waiting for a reply reads. */
export interface ReplyWaitDeps {
  replies: ReplyRepository;
  streams: ReplyStreamReader;
  log: Logger;
}

/**
 * A message's stored reply, waiting up to `waitMs` for it: the message's reply stream wakes the wait when the worker
 * stores the reply (its `done` entry), so a long-poll costs one read when it starts and one when it is woken, with a
 * read every 2 s as the fallback. Null when no reply came in time.
 */
export async function waitForReply(
  deps: ReplyWaitDeps,
  messageId: string,
  waitMs: number,
): Promise<ReplyDocument | null> {
  const read = () => deps.replies.get(messageId);
  const deadline = Date.now() + waitMs;
  let doc = await read();
  if (doc || waitMs <= 0) return doc;
  const signal = await ReplyDoneSignal.follow(deps.streams, [messageId]);
  try {
    for (;;) {
      doc = await read();
      const left = deadline - Date.now();
      if (doc || left <= 0) return doc;
      await signal.wait(Math.min(FALLBACK_READ_MS, left));
    }
  } finally {
    signal.close();
    if (signal.error)
      deps.log.warn({ err: signal.error, messageId }, 'reading a reply stream failed; the database was read instead');
  }
}
