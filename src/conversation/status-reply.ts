import type { MessageStatusView } from './dialogue-state.js';

/**
 * The answer of a `status` intent ("where is my answer?"), from the state of the conversation's other messages:
 * those still being processed, those that failed, or when the last reply was stored.
 */
export function statusReply(others: readonly MessageStatusView[], language: 'en' | 'zh'): string {
  const zh = language === 'zh';
  const pending = others.filter((m) => m.status === 'queued' || m.status === 'processing');
  const failed = others.filter((m) => m.status === 'failed');
  const replied = others.filter((m) => m.status === 'replied');
  const parts: string[] = [];
  if (pending.length > 0) {
    const since = time(pending[0].startedAt ?? pending[0].queuedAt);
    parts.push(
      zh
        ? `您有 ${pending.length} 条消息正在处理中（最早的一条从 ${since} 开始处理），回复马上就到。`
        : `${pending.length === 1 ? 'Your earlier message is' : `${pending.length} of your messages are`} being processed (since ${since}); the answer will be here shortly.`,
    );
  }
  if (failed.length > 0) {
    const codes = [...new Set(failed.map((m) => m.error?.code ?? 'ERR_INTERNAL'))].join(', ');
    parts.push(
      zh
        ? `有 ${failed.length} 条消息未能回复（${codes}），请重新发送。`
        : `${failed.length === 1 ? 'One message' : `${failed.length} messages`} could not be answered (${codes}); please send ${failed.length === 1 ? 'it' : 'them'} again.`,
    );
  }
  if (pending.length === 0 && replied.length > 0) {
    const last = time(replied[replied.length - 1].finishedAt ?? replied[replied.length - 1].queuedAt);
    parts.push(
      zh
        ? `您之前的消息都已回复，最近一条回复于 ${last}。`
        : `All your earlier messages have been answered; the latest reply was at ${last}.`,
    );
  }
  if (parts.length === 0)
    parts.push(
      zh
        ? '这个对话里还没有收到您之前的消息。'
        : "I haven't received any earlier message from you in this conversation.",
    );
  return parts.join(zh ? '' : ' ');
}

function time(d: Date): string {
  return `${d.toISOString().slice(11, 19)} UTC`;
}
