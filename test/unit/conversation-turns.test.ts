import { describe, expect, it } from 'vitest';
import { conversationTurns, turnPosition } from '../../src/pipeline/conversation-turns.js';
import type { QueuedJob } from '../../src/queue/batch-collector.js';
import type { Answer, ParsedJob, PlannedJob } from '../../src/pipeline/batch-stages.js';

const ms = Date.UTC(2026, 11, 4, 12);
const job = (id: string) =>
  ({ id, timestamp: ms, attemptsMade: 0, stalledCounter: 0, data: {} }) as unknown as QueuedJob;
const message = (messageId: string, conversationId = 'c') => ({
  v: 1 as const,
  tenant: 'default',
  messageId,
  conversationId,
  userId: 'u',
  text: `q${messageId}`,
});
const answer = (id: string, place?: number, intent = 'chitchat'): Answer => ({
  kind: 'generated',
  job: job(id),
  key: id,
  planned: {
    job: job(id),
    key: id,
    digest: 'd',
    message: message(id),
    plan: { kind: 'generate', intent } as PlannedJob['plan'],
    place,
  },
  passageIds: [],
  result: { text: `a${id}`, promptTokens: 1, generatedTokens: 1, finishReason: 'stop' },
});

describe('conversation turns', () => {
  it('place a turn by its conversation place, with a time that agrees with it, else by its enqueue time', () => {
    expect(turnPosition(job('1'), ms * 1000 + 1_999)).toEqual({ at: new Date(ms + 1), seq: ms * 1000 + 1_999 });
    expect(turnPosition(job('1'), undefined)).toEqual({ at: new Date(ms), seq: ms * 1000 });
  });

  it('writes the answered turns and, from their marks, the ones an earlier pass answered; never an unreadable one', () => {
    const redelivered: ParsedJob = { job: job('7'), key: '7', digest: 'd', message: message('7') };
    const marks = new Map([
      ['7', { status: 'replied' as const, text: 'before', intent: 'greeting', place: ms * 1000 + 5 }],
    ]);
    const out = conversationTurns(
      [answer('10', ms * 1000 + 9), answer('9', ms * 1000 + 8), answer('x', undefined, 'invalid')],
      [redelivered],
      marks,
    );
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ conversationId: 'c', userId: 'u' });
    expect(out[0].turns.map((t) => [t.messageId, t.assistant, t.seq])).toEqual([
      ['10', 'a10', ms * 1000 + 9],
      ['9', 'a9', ms * 1000 + 8],
      ['7', 'before', ms * 1000 + 5],
    ]);
  });
});
