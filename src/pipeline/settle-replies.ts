import type { ReplyCounters } from '../metrics/reply-counters.js';
import type { ConversationOrder } from '../queue/conversation-order.js';
import type { ReplyStreamPublisher } from '../queue/reply-stream.js';
import type { JobRef, StoredReplyMark, StoredReplyMarks } from '../queue/stored-reply-marks.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import { markOf } from './batch-stages.js';
import type { ConversationTurns } from './conversation-turns.js';

/** What storing and settling replies write to: the batch processor and the failed-job reconciler share it. */
export interface SettleDeps {
  replies: ReplyRepository;
  marks: StoredReplyMarks;
  conversations?: ConversationRepository;
  stream?: ReplyStreamPublisher;
  order?: ConversationOrder;
  counters?: ReplyCounters;
}

/** Awaits one step that reads or writes Redis or the database (a batch pass times it and names its failures). */
export type StepRunner = <T>(name: string, work: Promise<T>) => Promise<T>;

/** What a pass knows of its jobs' stored replies, by reply key: the marks it read and those it wrote. */
export type ReplyMarks = ReadonlyMap<string, StoredReplyMark>;

/** A reply document written for a job, and the job's place in its conversation. */
export interface WrittenReply {
  job: JobRef;
  doc: ReplyDocument;
  place?: number;
}

/** What a pass settles: the replies it wrote, which of them were new, and what else it releases. */
export interface Settling {
  written: readonly WrittenReply[];
  /** Keys newly stored; the others were found stored (a duplicate key). */
  stored: ReadonlySet<string>;
  /** The marks read at the start of the pass. */
  marked: ReplyMarks;
  /** The turns to write, from every mark the pass knows (conversation turns are idempotent inserts). */
  turns: (marks: ReplyMarks) => ConversationTurns[];
  /** The messages whose places in their conversations are done with. */
  released: ReadonlyArray<{ messageId: string; conversationId: string }>;
}

/**
 * Stores replies in one bulk write, tells stream readers they are done, and counts the new ones; returns the keys
 * newly stored. Streams are flushed first, so a reader that finds a reply stored has its every token already.
 */
export async function storeReplies(deps: SettleDeps, docs: readonly ReplyDocument[]): Promise<Set<string>> {
  if (docs.length === 0) return new Set();
  await deps.stream?.flush();
  const stored = await deps.replies.storeAll(docs);
  for (const d of docs) deps.stream?.done(d._id);
  await deps.counters?.record(docs.filter((d) => stored.has(d._id)));
  return stored;
}

/**
 * After the replies are stored, in this order: replies found stored instead (their worker died before marking
 * them) are read for their marks; every job answered now gets its mark; the turns are written; and only then are
 * the conversations' places released, so the next message of a conversation sees this one's turn. Returns every
 * mark the pass knows, for the jobs' outcomes.
 */
export async function settleReplies(deps: SettleDeps, step: StepRunner, s: Settling): Promise<ReplyMarks> {
  const found = await step(
    'found',
    deps.replies.getMany(s.written.filter((w) => !s.stored.has(w.doc._id)).map((w) => w.doc._id)),
  );
  const fresh = s.written.flatMap((w) => {
    const doc = s.stored.has(w.doc._id) ? w.doc : found.get(w.doc._id);
    return doc ? [{ job: w.job, key: w.doc._id, reply: markOf(doc, w.place) }] : [];
  });
  for (const key of found.keys()) deps.stream?.done(key);
  await step('marks', deps.marks.mark(fresh));
  const marks: ReplyMarks = new Map([...s.marked, ...fresh.map((f) => [f.key, f.reply] as const)]);
  const turns = s.turns(marks);
  if (turns.length > 0 && deps.conversations) await step('turns', deps.conversations.appendMany(turns));
  await step('release', deps.order?.release(s.released) ?? Promise.resolve());
  return marks;
}
