import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/contract/message-contract.js';
import type { MessageStatusView } from '../../src/conversation/dialogue-state.js';
import { statusReply } from '../../src/conversation/status-reply.js';
import { renderTemplate } from '../../src/intent/template.js';

const message: Message = {
  v: 1,
  tenant: 'default',
  messageId: 'm1',
  conversationId: 'c1',
  userId: 'alice',
  text: 'hi',
  metadata: { tier: 'gold', visits: 3 },
};

describe('renderTemplate', () => {
  it('fills slots from the pattern, the message, its metadata and the file vars, in that order', () => {
    expect(
      renderTemplate(
        '{orderId} for {userId} ({metadata.tier}, {metadata.visits}) at {shop}',
        message,
        { orderId: 'MP-1' },
        { shop: 'Maple' },
      ),
    ).toBe('MP-1 for alice (gold, 3) at Maple');
    // A worker holds a tenant's ids as scoped keys; a reply shows them as the tenant sent them.
    const scoped = { ...message, tenant: 'acme', messageId: 'acme/m1', conversationId: 'acme/c1' };
    expect(renderTemplate('{messageId} in {conversationId}', scoped, {}, {})).toBe('m1 in c1');
    expect(renderTemplate('{userId}', message, { userId: 'from-pattern' }, {})).toBe('from-pattern');
  });

  it('uses the fallback or nothing for unknown names, and never re-expands a value', () => {
    expect(renderTemplate('Hi {name|there}{missing}!', message, {}, {})).toBe('Hi there!');
    expect(renderTemplate('{a}', message, { a: '{userId}' }, {})).toBe('{userId}');
    expect(renderTemplate('{constructor} {toString|x}', message, {}, {})).toBe(' x');
  });
});

describe('statusReply', () => {
  const at = (s: string) => new Date(`2026-11-28T${s}Z`);
  const view = (status: MessageStatusView['status'], extra: Partial<MessageStatusView> = {}): MessageStatusView => ({
    messageId: 'x',
    status,
    queuedAt: at('10:00:00'),
    ...extra,
  });

  it('tells of messages still being processed, since when', () => {
    expect(statusReply([view('processing', { startedAt: at('10:00:02') })], 'en')).toBe(
      'Your earlier message is being processed (since 10:00:02 UTC); the answer will be here shortly.',
    );
    expect(statusReply([view('queued'), view('processing')], 'zh')).toBe(
      '您有 2 条消息正在处理中（最早的一条从 10:00:00 UTC 开始处理），回复马上就到。',
    );
  });

  it('tells of failed messages with their codes, and of the last reply when nothing is pending', () => {
    expect(
      statusReply(
        [
          view('replied', { finishedAt: at('10:01:00') }),
          view('failed', { error: { code: 'ERR_HANDLER', message: 'x' } }),
        ],
        'en',
      ),
    ).toBe(
      'One message could not be answered (ERR_HANDLER); please send it again. All your earlier messages have been answered; the latest reply was at 10:01:00 UTC.',
    );
    expect(statusReply([], 'en')).toBe("I haven't received any earlier message from you in this conversation.");
    expect(statusReply([], 'zh')).toBe('这个对话里还没有收到您之前的消息。');
  });
});
