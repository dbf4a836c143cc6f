import type { MessageStateDocument } from '../contract/reply-document.js';
import { StorageError } from '../errors/errors.js';
import type { Database } from './database.js';
import { onlyDuplicateKeys } from './duplicate-keys.js';

/**
 * The `processing` records of collection `messages`. One unordered insert per batch marks every message taken; a
 * retried batch finds its records there already and leaves them (the first start time stays). The final state lives
 * in the reply document, written once, so nothing here is ever updated.
 */
export class MessageStateRepository {
  constructor(private readonly database: Database) {}

  /** Records that these messages are being processed. */
  async markProcessing(states: readonly MessageStateDocument[]): Promise<void> {
    if (states.length === 0) return;
    try {
      await this.database.messages.insertMany([...states], { ordered: false }).catch((err: unknown) => {
        if (!onlyDuplicateKeys(err)) throw err;
      });
    } catch (cause) {
      throw new StorageError(`recording message states failed: ${(cause as Error).message}`, { cause });
    }
  }

  /** The record of one message, or null when no worker has taken it yet. */
  async get(messageId: string): Promise<MessageStateDocument | null> {
    return this.database.messages.findOne({ _id: messageId });
  }

  /** The records of a conversation's most recent messages, oldest first. */
  async inConversation(conversationId: string, limit: number): Promise<MessageStateDocument[]> {
    const newest = await this.database.messages.find({ conversationId }).sort({ queuedAt: -1, _id: -1 }).limit(limit).toArray();
    return newest.reverse();
  }
}
