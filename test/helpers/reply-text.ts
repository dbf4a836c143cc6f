import type { ReplyDocument } from '../../src/storage/reply-document.js';

/** A stored reply's text, when it replied; undefined for a failed reply or none. */
export function replyText(doc: ReplyDocument | null | undefined): string | undefined {
  return doc?.status === 'replied' ? doc.text : undefined;
}

/** A stored reply's finish reason, when it replied. */
export function replyFinish(doc: ReplyDocument | null | undefined): string | undefined {
  return doc?.status === 'replied' ? doc.finishReason : undefined;
}

/** A stored reply's error code, when it failed. */
export function replyErrorCode(doc: ReplyDocument | null | undefined): string | undefined {
  return doc?.status === 'failed' ? doc.error.code : undefined;
}
