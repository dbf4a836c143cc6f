import type { ReplyDocument } from '../storage/reply-document.js';
import type { SseFormat } from './sse-reply-relay.js';

/** OpenAI's usage object of a stored reply: what it tells its client it used (the model's counts on replies stored before `usage`). */
export function usageOf(doc: ReplyDocument) {
  const { prompt, completion } = doc.usage ?? { prompt: doc.tokens.prompt, completion: doc.tokens.generated };
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** OpenAI's streaming chunks: `data: {…chunk}` lines, the finish reason in the last one, then `data: [DONE]`. */
export function openAiSseFormat(o: {
  id: string;
  created: number;
  model: string;
  kind: 'chat' | 'text';
  includeUsage: boolean;
}): SseFormat {
  let first = true;
  const data = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;
  const chunk = (piece: string | null, finish: string | null) => {
    const choice =
      o.kind === 'chat'
        ? {
            index: 0,
            delta: piece === null ? {} : { ...(first ? { role: 'assistant' } : {}), content: piece },
            logprobs: null,
            finish_reason: finish,
          }
        : { index: 0, text: piece ?? '', logprobs: null, finish_reason: finish };
    if (piece !== null) first = false;
    return data({
      id: o.id,
      object: o.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: o.created,
      model: o.model,
      choices: [choice],
    });
  };
  const error = (code: string, message: string) =>
    `${data({ error: { message, type: 'server_error', param: null, code } })}data: [DONE]\n\n`;
  return {
    token: (text) => chunk(text, null),
    reset: () => null,
    final: (doc) => {
      if (!doc) return error('timeout', 'no reply in time; it will still be stored');
      if (doc.status === 'failed') return error(doc.error.code, doc.error.message);
      const usage = o.includeUsage
        ? data({
            id: o.id,
            object: 'chat.completion.chunk',
            created: o.created,
            model: o.model,
            choices: [],
            usage: usageOf(doc),
          })
        : '';
      return `${chunk(null, doc.finishReason ?? 'stop')}${usage}data: [DONE]\n\n`;
    },
    error,
  };
}
