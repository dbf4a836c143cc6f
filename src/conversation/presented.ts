import { idOfKey } from '../contract/scoped-key.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import type { DialogueView, MessageStatusView } from './dialogue-state.js';

/**
 * A stored reply as the API and the CLI show it: `_id` is `messageId`, and ids are the tenant's own (not scoped keys);
 * the digest stays inside.
 */
export function presentReply(doc: ReplyDocument) {
  const { _id, digest: _, conversationId, ...rest } = doc;
  return { messageId: idOfKey(_id), ...(conversationId ? { conversationId: idOfKey(conversationId) } : {}), ...rest };
}

/** A message's status as the API shows it, with the tenant's own ids. */
export function presentStatus(view: MessageStatusView): MessageStatusView {
  return {
    ...view,
    messageId: idOfKey(view.messageId),
    ...(view.conversationId ? { conversationId: idOfKey(view.conversationId) } : {}),
  };
}

/** A conversation as the API shows it, with the tenant's own ids. */
export function presentConversation(view: DialogueView) {
  return {
    ...view,
    _id: idOfKey(view._id),
    turns: view.turns.map((t) => ({ ...t, messageId: idOfKey(t.messageId) })),
    messages: view.messages.map(presentStatus),
  };
}
