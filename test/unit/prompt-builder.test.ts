import { expect, it } from 'vitest';
import { buildPrompt } from '../../src/conversation/prompt-builder.js';

it('puts recent turns oldest first, then the new message and the assistant cue', () => {
  const at = new Date(0);
  expect(buildPrompt([{ messageId: 'a', user: 'Hi', assistant: 'Hello!', at }, { messageId: 'b', user: '你好', assistant: '您好', at }], 'Where is my order?')).toBe(
    'User: Hi\nAssistant: Hello!\nUser: 你好\nAssistant: 您好\nUser: Where is my order?\nAssistant:',
  );
  expect(buildPrompt([], 'Hi')).toBe('User: Hi\nAssistant:');
});
