import type { ConversationView, MessageStateDocument, ReplyDocument } from '../storage/reply-document.js';
import { StorageError } from '../errors/errors.js';
import { tenantOfKey } from '../contract/scoped-key.js';
import type { ConversationRepository } from '../storage/conversation-repository.js';
import type { Database } from '../storage/database.js';
import { MessageStateRepository } from '../storage/message-state-repository.js';
import { ReplyRepository } from '../storage/reply-repository.js';

/** Where a message stands. */
export type MessageStatus = 'queued' | 'processing' | 'replied' | 'failed';

/** One message's state with its timestamps, as the library, CLI and API show it. */
export interface MessageStatusView {
  messageId: string;
  conversationId?: string;
  status: MessageStatus;
  intent?: string;
  queuedAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  /** Attempts made before the current or final one. */
  attempts?: number;
  error?: { code: string; message: string };
}

/** A conversation with its turns and the state of its recent messages. */
export interface DialogueView extends ConversationView {
  messages: MessageStatusView[];
}

/** Where a message that is neither answered nor recorded may still be: waiting, or taken, in the queue. */
export interface PendingMessages {
  /** The message's job while it waits or is taken; undefined once it is finished or when there is none. */
  pending(
    messageId: string,
  ): Promise<{ state: 'active' | 'waiting'; queuedAt: Date; startedAt?: Date; attempts: number } | undefined>;
}

/** Most messages a conversation view lists. */
export const CONVERSATION_MESSAGES_SHOWN = 50;

/**
 * Where every message and conversation stands, from the three places that hold it: the BullMQ job in Redis while it
 * is queued, its `processing` record once a worker took it, and its reply document when it is replied or failed.
 * The reply wins, then the record, then the job.
 */
export class DialogueState {
  private readonly states: MessageStateRepository;
  private readonly replies: ReplyRepository;

  constructor(
    database: Database,
    private readonly conversations: ConversationRepository,
    private readonly queue?: PendingMessages,
  ) {
    this.states = new MessageStateRepository(database);
    this.replies = new ReplyRepository(database);
  }

  /** One message's status, or null when neither the queue nor the database knows it. */
  async message(messageId: string): Promise<MessageStatusView | null> {
    const reply = await this.replies.get(messageId);
    if (reply) return fromReply(reply);
    const state = await this.states.get(messageId);
    if (state) return fromState(state);
    const job = await this.queue?.pending(messageId);
    if (!job) return null;
    return {
      messageId,
      status: job.state === 'active' ? 'processing' : 'queued',
      queuedAt: job.queuedAt,
      ...(job.startedAt ? { startedAt: job.startedAt } : {}),
      attempts: job.attempts,
    };
  }

  /** A conversation's recent messages, oldest first: final ones from their replies, the others from their records. */
  async conversationMessages(
    conversationId: string,
    limit = CONVERSATION_MESSAGES_SHOWN,
  ): Promise<MessageStatusView[]> {
    let replies: ReplyDocument[];
    let states: MessageStateDocument[];
    try {
      [replies, states] = await Promise.all([
        this.replies.inConversation(conversationId, limit),
        this.states.inConversation(conversationId, limit),
      ]);
    } catch (cause) {
      throw new StorageError(
        `reading the messages of conversation ${conversationId} failed: ${(cause as Error).message}`,
        { cause },
      );
    }
    const byId = new Map<string, MessageStatusView>();
    for (const s of states) byId.set(s._id, fromState(s));
    for (const r of replies) byId.set(r._id, fromReply(r));
    return [...byId.values()]
      .sort((a, b) => a.queuedAt.getTime() - b.queuedAt.getTime() || a.messageId.localeCompare(b.messageId))
      .slice(-limit);
  }

  /** One conversation: its turns (with their intents) and the state of its recent messages; null when unknown. */
  async conversation(conversationId: string): Promise<DialogueView | null> {
    const [view, messages] = await Promise.all([
      this.conversations.get(conversationId),
      this.conversationMessages(conversationId),
    ]);
    if (view) return { ...view, messages };
    if (messages.length === 0) return null;
    // Its first messages are still being processed: the conversation document is written with the first turn.
    const first = await this.states.get(messages[0].messageId);
    return {
      _id: conversationId,
      tenant: tenantOfKey(conversationId),
      userId: first?.userId ?? '',
      createdAt: messages[0].queuedAt,
      updatedAt: messages[messages.length - 1].queuedAt,
      turns: [],
      messages,
    };
  }
}

function fromReply(r: ReplyDocument): MessageStatusView {
  return {
    messageId: r._id,
    ...(r.conversationId ? { conversationId: r.conversationId } : {}),
    status: r.status,
    ...(r.intent ? { intent: r.intent } : {}),
    queuedAt: r.timings.queuedAt,
    startedAt: r.timings.startedAt,
    finishedAt: r.timings.finishedAt,
    ...(r.status === 'failed' ? { error: r.error } : {}),
  };
}

function fromState(s: MessageStateDocument): MessageStatusView {
  return {
    messageId: s._id,
    conversationId: s.conversationId,
    status: 'processing',
    queuedAt: s.queuedAt,
    startedAt: s.startedAt,
    attempts: s.attempts,
  };
}
