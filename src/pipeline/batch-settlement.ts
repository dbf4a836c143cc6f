import type { ConversationOrder } from '../queue/conversation-order.js';
import type { ReplyStreamPublisher } from '../queue/reply-stream.js';
import type { StoredReplyMark, StoredReplyMarks } from '../queue/stored-reply-marks.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import { storableText } from '../contract/storable-text.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import type { BatchPass } from './batch-pass.js';
import { answerText, markOf, type Answer, type ParsedJob, type Sorted } from './batch-stages.js';
import { conversationTurns, heardBefore } from './conversation-turns.js';
import type { ReplySpeaker } from './reply-speaker.js';

/** Answers stored by one write: the answers, their documents, and the keys newly stored. */
export interface StoredAnswers {
  answers: Answer[];
  docs: ReplyDocument[];
  stored: Set<string>;
}

/** What settling a batch writes to. */
export interface SettleDeps {
  replies: ReplyRepository;
  conversations: ConversationRepository;
  marks: StoredReplyMarks;
  stream?: ReplyStreamPublisher;
  order?: ConversationOrder;
}

/**
 * Marks the answered jobs, writes their conversation turns (and again those of redelivered ones, from their marks)
 * and releases their conversations' order. Replies found stored by the insert's duplicate key had no mark: those
 * few are read, for their turns and marks.
 */
export async function settleBatch(
  deps: SettleDeps,
  pass: BatchPass,
  sorted: Sorted,
  marked: Map<string, StoredReplyMark>,
  waiting: readonly ParsedJob[],
  { answers, docs, stored }: StoredAnswers,
): Promise<void> {
  const found = await pass.io(
    'found',
    deps.replies.getMany(answers.filter((a) => !stored.has(a.key)).map((a) => a.key)),
  );
  const byKey = new Map(answers.map((a) => [a.key, a]));
  const placeOf = (a: Answer | undefined) => (a && a.kind !== 'rejected' ? a.planned.place : undefined);
  for (const [key, doc] of found) {
    marked.set(key, markOf(doc, placeOf(byKey.get(key))));
    deps.stream?.done(key);
  }
  const newMarks = answers.flatMap((a, i) =>
    stored.has(a.key) ? [{ job: a.job, reply: markOf(docs[i], placeOf(a)) }] : [],
  );
  const foundMarks = [...found.keys()].flatMap((key) => {
    const a = byKey.get(key);
    return a ? [{ job: a.job, reply: marked.get(key)! }] : [];
  });
  await pass.io('marks', deps.marks.mark([...newMarks, ...foundMarks]));
  const redelivered = [...sorted.parsed, ...heardBefore(sorted.voice, marked)].filter((p) => marked.has(p.key));
  const turns = conversationTurns(
    answers.filter((a) => stored.has(a.key)),
    redelivered,
    marked,
  );
  await pass.io('turns', deps.conversations.appendMany(turns));
  // Only now, with its turn written, may the next message of each conversation go: every text or voice message of
  // the batch that did not wait is answered (or was, by an earlier pass).
  const waits = new Set(waiting.map((w) => w.key));
  const released = [...sorted.parsed, ...sorted.voice]
    .filter((p) => !waits.has(p.key))
    .map((p) => ({ messageId: p.key, conversationId: p.message.conversationId }));
  await pass.io('release', deps.order?.release(released) ?? Promise.resolve());
}

/** Speaks the stored replies of the messages that asked for speech (after storing: speech never delays a reply). */
export function speakReplies(speaker: ReplySpeaker | undefined, { answers, stored }: StoredAnswers): void {
  speaker?.add(
    answers.flatMap((a) => {
      const text = answerText(a);
      return stored.has(a.key) && a.kind !== 'rejected' && a.planned.message.speech && text !== undefined
        ? [{ messageId: a.key, text: storableText(text) }]
        : [];
    }),
  );
}
