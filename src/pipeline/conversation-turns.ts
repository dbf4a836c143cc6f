import type { QueuedJob } from '../queue/batch-collector.js';
import type { Message } from '../contract/message-contract.js';
import type { StoredReplyMark } from '../queue/stored-reply-marks.js';
import type { ConversationTurn } from '../storage/reply-document.js';
import { storableText } from '../contract/storable-text.js';
import { answerText, type Answer, type ParsedJob, type VoiceJob } from './batch-stages.js';

/** A conversation's new turns, as `ConversationRepository.appendMany` takes them. */
export interface ConversationTurns {
  tenant: string;
  /** Its scoped key. */
  conversationId: string;
  userId: string;
  turns: ConversationTurn[];
}

/**
 * Where a message's turn goes in its conversation: its place in the conversation order when it has one, else its
 * enqueue time. Enqueue times tie within a millisecond (a bulk enqueue gives many messages the same one), places do
 * not; and the turn's time is taken from the place, so that time and place never disagree.
 */
export function turnPosition(job: QueuedJob, place: number | undefined): Pick<ConversationTurn, 'at' | 'seq'> {
  return place === undefined
    ? { at: new Date(job.timestamp), seq: job.timestamp * 1000 }
    : { at: new Date(Math.floor(place / 1000)), seq: place };
}

/**
 * The turns of the replies stored now and, again, of replies an earlier attempt stored (from their marks): that
 * attempt may have failed after storing its replies and before writing their turns, and turns are inserts keyed by
 * messageId, so writing one twice is a no-op. Unreadable messages and their "please rephrase" stay out of the history.
 */
export function conversationTurns(
  answered: readonly Answer[],
  redelivered: readonly ParsedJob[],
  marks: ReadonlyMap<string, StoredReplyMark>,
): ConversationTurns[] {
  const byConversation = new Map<string, ConversationTurns>();
  const add = (
    m: Message,
    text: string,
    intent: string | undefined,
    position: Pick<ConversationTurn, 'at' | 'seq'>,
    slots?: ConversationTurn['slots'],
  ) => {
    if (intent === 'invalid') return;
    const entry = byConversation.get(m.conversationId) ?? {
      tenant: m.tenant,
      conversationId: m.conversationId,
      userId: m.userId,
      turns: [],
    };
    const filled = slots && Object.keys(slots).length > 0 ? { slots } : {};
    entry.turns.push({ messageId: m.messageId, user: m.text, assistant: text, intent, ...filled, ...position });
    byConversation.set(m.conversationId, entry);
  };
  for (const a of answered) {
    const text = answerText(a);
    if (a.kind !== 'rejected' && text !== undefined)
      add(
        a.planned.message,
        storableText(text),
        a.planned.plan.intent,
        turnPosition(a.job, a.planned.place),
        a.planned.plan.slots,
      );
  }
  for (const p of redelivered) {
    const prior = marks.get(p.key);
    if (prior?.status === 'replied' && prior.text !== undefined)
      add(p.message, prior.text, prior.intent, turnPosition(p.job, prior.place));
  }
  return [...byConversation.values()];
}

/** Voice messages a previous pass answered, with the text it heard (from their marks), for their conversation turns. */
export function heardBefore(voice: readonly VoiceJob[], marks: ReadonlyMap<string, StoredReplyMark>): ParsedJob[] {
  return voice.flatMap((v) => {
    const heard = marks.get(v.key)?.heard;
    return heard === undefined
      ? []
      : [{ job: v.job, key: v.key, digest: v.digest, message: { ...v.message, text: heard } }];
  });
}
