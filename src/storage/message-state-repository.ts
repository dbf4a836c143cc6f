import type { MessageStateDocument } from './reply-document.js';
import type { Database } from './database.js';
import { insertNew } from './insert-new.js';
import { tenantOfKey } from '../contract/scoped-key.js';

/**
 * The `processing` records of collection `messages`. One unordered insert per batch marks every message taken; a
 * retried batch finds its records there already and leaves them (the first start time stays). The final state lives
 * in the reply document, written once, so nothing here is ever updated.
 */
export class MessageStateRepository {
  constructor(private readonly database: Database) {}

  /** Records that these messages are being processed. */
  async markProcessing(states: readonly MessageStateDocument[]): Promise<void> {
    await insertNew(this.database.messages, states, 'recording message states');
  }

  /** The record of one message, or null when no worker has taken it yet. */
  async get(messageId: string): Promise<MessageStateDocument | null> {
    return this.database.messages.findOne({ _id: messageId });
  }

  /** The records of a conversation's most recent messages, oldest first. */
  async inConversation(conversationId: string, limit: number): Promise<MessageStateDocument[]> {
    const newest = await this.database.messages
      .find({ tenant: tenantOfKey(conversationId), conversationId })
      .sort({ queuedAt: -1, _id: -1 })
      .limit(limit)
      .toArray();
    return newest.reverse();
  }
}
