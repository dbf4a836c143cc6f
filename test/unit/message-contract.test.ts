import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/contract/message-contract.js';
import { ContractError } from '../../src/errors/errors.js';
import { storableText } from '../../src/contract/storable-text.js';

const ok = { v: 1, messageId: 'm-1', conversationId: 'c:1', userId: 'u.1', text: 'hello' };

/** Asserts that `data` is refused, with `path` named and the reason matching `reason`. */
function refused(data: unknown, path: string, reason: RegExp) {
  try {
    parseMessage(data);
  } catch (err) {
    expect(err).toBeInstanceOf(ContractError);
    const issue = (err as ContractError).issues.find((i) => i.path === path);
    expect(issue, `issues: ${JSON.stringify((err as ContractError).issues)}`).toBeDefined();
    expect(issue!.message).toMatch(reason);
    expect((err as ContractError).code).toBe('ERR_CONTRACT');
    return;
  }
  throw new Error(`accepted ${JSON.stringify(data)}`);
}

describe('message contract v1', () => {
  it('takes a voice message as audio instead of text: one of the two, never both', () => {
    const { text: _text, ...voice } = ok;
    const fileId = '6b0c2993ef0d9c6fd9f8a7e0';
    expect(parseMessage({ ...voice, audio: { fileId } })).toEqual({
      ...voice,
      tenant: 'default',
      // No language: the worker's recogniser detects it (Whisper) or hears English.
      audio: { fileId },
    });
    expect(parseMessage({ ...voice, audio: { fileId, language: 'zh' } }).audio).toEqual({ fileId, language: 'zh' });
    refused(voice, 'text', /text is required \(or audio/);
    refused({ ...ok, audio: { fileId } }, 'audio', /not both/);
    refused({ ...voice, audio: { fileId: 'x' } }, 'audio.fileId', /24 hex digits/);
    refused({ ...voice, audio: { fileId, language: 'English' } }, 'audio.language', /ISO 639/);
    refused({ ...voice, audio: { fileId, bytes: 'AAAA' } }, 'audio', /unknown field\(s\): bytes/);
  });

  it('names its tenant: any of 1-64 characters of A-Z a-z 0-9 _ -, else the default tenant', () => {
    expect(parseMessage({ ...ok, tenant: 'acme_2-b' }).tenant).toBe('acme_2-b');
    expect(parseMessage(ok).tenant).toBe('default');
    for (const bad of ['', 'a/b', 'a:b', 'x'.repeat(65), 'ü'])
      refused({ ...ok, tenant: bad }, 'tenant', /tenant must be/);
  });

  it('accepts a valid message and trims its text', () => {
    expect(
      parseMessage({
        ...ok,
        text: '  你好 😀  ',
        createdAt: '2026-11-28T10:00:00Z',
        metadata: { channel: 'web', score: 3, vip: true },
      }),
    ).toEqual({
      ...ok,
      tenant: 'default',
      text: '你好 😀',
      createdAt: '2026-11-28T10:00:00Z',
      metadata: { channel: 'web', score: 3, vip: true },
    });
  });

  it.each([
    ['empty text', { ...ok, text: '' }, 'text', /empty/],
    ['whitespace text', { ...ok, text: ' \n\t ' }, 'text', /empty/],
    ['8,001 characters', { ...ok, text: 'x'.repeat(8001) }, 'text', /at most 8000/],
    ['1 MB of text', { ...ok, text: 'x'.repeat(1_000_001) }, 'text', /at most/],
    ['a lone surrogate', { ...ok, text: 'a\uD800b' }, 'text', /surrogate/],
    ['NUL', { ...ok, text: 'a\u0000b' }, 'text', /NUL/],
    ['a control character', { ...ok, text: 'a\u0007b' }, 'text', /control/],
    ['wrong version', { ...ok, v: 2 }, 'v', /contract version/],
    ['missing version', { messageId: 'm', conversationId: 'c', userId: 'u', text: 't' }, 'v', /contract version/],
    ['extra field', { ...ok, admin: true }, '(root)', /unknown field.*admin/],
    ['$ in an id', { ...ok, messageId: '$where' }, 'messageId', /A-Z/],
    ['an operator object as id', { ...ok, conversationId: { $ne: null } }, 'conversationId', /string/],
    ['a number as text', { ...ok, text: 42 }, 'text', /string/],
    ['a 129-character id', { ...ok, userId: 'u'.repeat(129) }, 'userId', /1-128/],
    ['a bad date', { ...ok, createdAt: 'yesterday' }, 'createdAt', /ISO-8601/],
    ['a $ metadata key', { ...ok, metadata: { $set: 'x' } }, 'metadata.$set', /\$/],
    ['a dotted metadata key', { ...ok, metadata: { 'a.b': 'x' } }, 'metadata.a.b', /contain \./],
    [
      '__proto__ metadata key',
      { ...ok, metadata: JSON.parse('{"__proto__": "x"}') },
      'metadata.__proto__',
      /__proto__/,
    ],
    ['an object metadata value', { ...ok, metadata: { a: { b: 1 } } }, 'metadata.a', /strings.*numbers.*booleans/],
    [
      '33 metadata keys',
      { ...ok, metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) },
      'metadata',
      /at most 32/,
    ],
    [
      '10,000 metadata keys',
      { ...ok, metadata: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])) },
      'metadata',
      /at most 32/,
    ],
  ])('refuses %s', (_name, data, path, reason) => refused(data, path, reason));

  it('takes generation settings and a dialogue, and names each bad one', () => {
    const generation = { maxNewTokens: 8, temperature: 0.7, topP: 0.9, stop: ['\nUser:'], seed: 42 };
    const history = [{ user: 'hi', assistant: 'hello' }];
    expect(parseMessage({ ...ok, generation, history })).toEqual({ ...ok, tenant: 'default', generation, history });
    refused({ ...ok, generation: { maxNewTokens: 513 } }, 'generation.maxNewTokens', /at most 512/);
    refused({ ...ok, generation: { temperature: -1 } }, 'generation.temperature', />=0/);
    refused({ ...ok, generation: { topP: 0 } }, 'generation.topP', />0/);
    refused({ ...ok, generation: { stop: ['a', 'b', 'c', 'd', 'e'] } }, 'generation.stop', /at most 4/);
    refused({ ...ok, generation: { stop: [''] } }, 'generation.stop.0', /must not be empty/);
    refused({ ...ok, generation: { seed: 1.5 } }, 'generation.seed', /expected int/);
    refused({ ...ok, generation: { beams: 4 } }, 'generation', /unknown field/);
    refused({ ...ok, history: Array.from({ length: 51 }, () => history[0]) }, 'history', /at most 50 turns/);
    refused({ ...ok, history: [{ user: 'a\u0000', assistant: 'b' }] }, 'history.0.user', /control characters/);
  });

  it('refuses non-objects', () => {
    for (const v of [null, 'text', 42, [ok]]) expect(() => parseMessage(v)).toThrow(ContractError);
  });

  it('accepts right-to-left override and emoji as ordinary text', () => {
    expect(parseMessage({ ...ok, text: '\u202Etxt.exe 👍🏽' }).text).toBe('\u202Etxt.exe 👍🏽');
  });
});

describe('storableText', () => {
  it('drops control characters (NUL included) and replaces lone surrogates, keeping tabs and line breaks', () => {
    expect(storableText('a\u0000b\u0007c\td\ne\r\u007f')).toBe('abc\td\ne\r');
    expect(storableText('x\uD800y')).toBe('x\uFFFDy');
    expect(storableText('你好 😀')).toBe('你好 😀');
  });
});
