import { errorCodeOf, errorMessageOf, type AvaError } from '../errors/errors.js';
import type { FailedReplyDocument, RepliedDocument, ReplyDocument } from '../storage/reply-document.js';
import { storableText } from '../contract/storable-text.js';
import type { Answer } from './batch-stages.js';
import { idField } from './reply-key.js';
import { DEFAULT_TENANT, scopedKey, splitScopedKey } from '../contract/scoped-key.js';

/**
 * The stored reply of an answer: `replied` with its text, finish reason and usage, or `failed` with the error's code
 * and message; with what planning found (intent, recognition, passages) and what was heard, when there was any.
 */
export function replyDocument(
  a: Answer,
  model: ReplyDocument['model'],
  timings: ReplyDocument['timings'],
): ReplyDocument {
  const message = a.kind === 'rejected' ? undefined : a.planned.message;
  // The key was checked to be a scoped key before anything was answered.
  const tenant = splitScopedKey(a.key)?.tenant ?? DEFAULT_TENANT;
  const rawConversation = idField(a.job.data, 'conversationId');
  const conversationId = message?.conversationId ?? (rawConversation && scopedKey(tenant, rawConversation));
  const userId = message?.userId ?? idField(a.job.data, 'userId');
  const output = a.kind === 'generated' && a.result.finishReason !== 'error' ? a.result : undefined;
  const passageIds = a.kind === 'canned' || a.kind === 'generated' ? a.passageIds : [];
  return {
    _id: a.key,
    tenant,
    ...(a.kind !== 'rejected' ? { digest: a.planned.digest } : {}),
    ...(conversationId ? { conversationId } : {}),
    ...(userId ? { userId } : {}),
    ...outcomeFields(a),
    ...(a.kind !== 'rejected' && a.planned.transcript ? { transcript: a.planned.transcript } : {}),
    ...(a.kind !== 'rejected' ? { intent: a.planned.plan.intent, recognition: a.planned.plan.recognition } : {}),
    ...(passageIds.length > 0 ? { passageIds: [...passageIds] } : {}),
    model,
    tokens: { prompt: output?.promptTokens ?? 0, generated: output?.generatedTokens ?? 0 },
    timings,
    createdAt: timings.finishedAt,
  };
}

/** Status and what goes with it: the text, how it ended and its usage; or the error. */
function outcomeFields(
  a: Answer,
): Pick<RepliedDocument, 'status' | 'text' | 'finishReason' | 'usage'> | Pick<FailedReplyDocument, 'status' | 'error'> {
  const failed = (error: AvaError) => ({
    status: 'failed' as const,
    error: { code: errorCodeOf(error), message: storableText(errorMessageOf(error)) },
  });
  switch (a.kind) {
    case 'rejected':
    case 'plan-failed':
      return failed(a.error);
    case 'canned':
      return { status: 'replied', text: storableText(a.text), finishReason: a.finishReason, usage: a.usage };
    case 'generated': {
      const r = a.result;
      if (r.finishReason === 'error') return failed(r.error);
      const usage = { prompt: r.promptTokens, completion: r.generatedTokens };
      return { status: 'replied', text: storableText(r.text), finishReason: r.finishReason, usage };
    }
  }
}
