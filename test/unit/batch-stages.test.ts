import { describe, expect, it } from 'vitest';
import {
  ContractError,
  GenerationError,
  ServiceUnavailableError,
  StorageError,
  errorKindOf,
} from '../../src/errors/errors.js';
import { BatchPass } from '../../src/pipeline/batch-pass.js';
import { batchOutcomes } from '../../src/pipeline/batch-outcomes.js';
import { sortJobs, type Answer, type PlannedJob } from '../../src/pipeline/batch-stages.js';
import { replyDocument } from '../../src/pipeline/reply-documents.js';
import type { QueuedJob } from '../../src/queue/batch-collector.js';

const job = (id: string, data: Record<string, unknown>) =>
  ({ id, timestamp: 1_000, attemptsMade: 0, stalledCounter: 0, data }) as unknown as QueuedJob;
const text = (id: string) => job(id, { v: 1, messageId: id, conversationId: 'c', userId: 'u', text: 'hi' });
const model = { id: 'tiny', revision: 'r' };
const timings = { queuedAt: new Date(0), startedAt: new Date(1), finishedAt: new Date(2), inferenceMs: 0 };
const planned = (id: string): PlannedJob => {
  const [p] = sortJobs([text(id)]).parsed;
  return { ...p, plan: { kind: 'generate', intent: 'chitchat', passages: [] } as unknown as PlannedJob['plan'] };
};

describe('error kinds', () => {
  it('are transient for a dependency away, permanent for bad input, and transient when unknown', () => {
    expect(errorKindOf(new StorageError('db down'))).toBe('transient');
    expect(errorKindOf(new ServiceUnavailableError('redis down'))).toBe('transient');
    expect(errorKindOf(new ContractError([{ path: 'text', message: 'missing' }]))).toBe('permanent');
    expect(errorKindOf(new GenerationError('nan'))).toBe('permanent');
    expect(errorKindOf(new Error('ECONNRESET'))).toBe('transient');
  });

  it("make a driver's raw error in an I/O step a transient StorageError naming the step, and keep an AvaError's", async () => {
    const pass = new BatchPass();
    const raw = pass.io('marks', Promise.reject(new Error('Connection is closed.')));
    await expect(raw).rejects.toBeInstanceOf(StorageError);
    await expect(pass.io('marks', Promise.reject(new Error('x')))).rejects.toThrow(/^marks: x$/);
    const own = new ContractError([{ path: 'text', message: 'bad' }]);
    await expect(pass.io('order', Promise.reject(own))).rejects.toBe(own);
    expect(Object.keys(pass.steps)).toEqual(['marks', 'order']);
  });
});

describe('answers by stage', () => {
  it('store each kind of answer as its reply document', () => {
    const p = planned('1');
    const rejected: Answer = {
      kind: 'rejected',
      job: job('2', { conversationId: 'c2' }),
      key: '2',
      error: new ContractError([{ path: 'text', message: 'missing' }]),
    };
    const generated: Answer = {
      kind: 'generated',
      job: p.job,
      key: '1',
      planned: p,
      passageIds: ['kb-1'],
      result: { text: 'hello', finishReason: 'length', promptTokens: 7, generatedTokens: 3 },
    };
    const canned: Answer = {
      kind: 'canned',
      job: p.job,
      key: '1',
      planned: p,
      text: 'Hi!',
      finishReason: 'stop',
      usage: { prompt: 5, completion: 2 },
      passageIds: [],
    };
    const failedGeneration: Answer = {
      ...generated,
      result: { finishReason: 'error', error: new GenerationError('nan') },
    };
    expect(replyDocument(rejected, model, timings)).toMatchObject({
      _id: '2',
      conversationId: 'c2',
      status: 'failed',
      error: { code: 'ERR_CONTRACT' },
    });
    expect(replyDocument(rejected, model, timings)).not.toHaveProperty('intent');
    expect(replyDocument(generated, model, timings)).toMatchObject({
      status: 'replied',
      text: 'hello',
      finishReason: 'length',
      usage: { prompt: 7, completion: 3 },
      tokens: { prompt: 7, generated: 3 },
      passageIds: ['kb-1'],
      intent: 'chitchat',
    });
    expect(replyDocument(canned, model, timings)).toMatchObject({
      status: 'replied',
      text: 'Hi!',
      usage: { prompt: 5, completion: 2 },
      tokens: { prompt: 0, generated: 0 },
    });
    expect(replyDocument(failedGeneration, model, timings)).toMatchObject({
      status: 'failed',
      error: { code: 'ERR_GENERATION' },
      intent: 'chitchat',
    });
  });

  it('give every job one outcome, in batch order', () => {
    const jobs = [text('a'), job('b', { nope: true }), text('c'), text('d'), job('bad id', {})];
    const sorted = sortJobs(jobs);
    const [a, , d] = sorted.parsed;
    const answers: Answer[] = [
      { kind: 'rejected', job: jobs[1], key: 'b', error: new ContractError([{ path: '(root)', message: 'x' }]) },
      {
        kind: 'generated',
        job: a.job,
        key: 'a',
        planned: { ...a, plan: planned('a').plan },
        passageIds: [],
        result: { text: 't', finishReason: 'stop', promptTokens: 1, generatedTokens: 1 },
      },
    ];
    const outcomes = batchOutcomes(jobs, sorted, [d], new Map([['c', { status: 'replied' as const, text: 'c' }]]), {
      answers,
      stored: new Set(['a', 'b']),
    });
    expect(outcomes.map((o) => o.kind)).toEqual(['replied', 'failed', 'already-stored', 'deferred', 'refused']);
  });
});
