import { z } from 'zod';
import { MAX_HISTORY_TURNS, MAX_NEW_TOKENS, MAX_TEXT_CHARS } from '../contract/message-contract.js';

const maxTokens = z
  .number()
  .int()
  .min(1)
  .max(MAX_NEW_TOKENS, `must be at most ${MAX_NEW_TOKENS}`)
  .nullable()
  .optional();
const text = z.union([z.string(), z.array(z.object({ type: z.literal('text'), text: z.string() }))]);

/** What both OpenAI routes take besides their input; unknown fields are ignored, as OpenAI-compatible servers do. */
const common = {
  model: z.string().min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: maxTokens,
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  stop: z
    .union([z.string().min(1), z.array(z.string().min(1)).max(4)])
    .nullable()
    .optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .nullable()
    .optional(),
  user: z.string().min(1).max(256).optional(),
  n: z.literal(1, { error: 'only n = 1 is supported' }).nullable().optional(),
};

/** Most messages of a chat request: the history a message may carry, its new message and a few instructions. */
export const MAX_CHAT_MESSAGES = 2 * MAX_HISTORY_TURNS + 9;

/** `POST /v1/chat/completions`. */
export const chatCompletionSchema = z.object({
  ...common,
  max_completion_tokens: maxTokens,
  messages: z
    .array(
      z.object({ role: z.enum(['system', 'developer', 'user', 'assistant']), content: text.nullable().optional() }),
    )
    .min(1, 'must hold at least one message')
    .max(MAX_CHAT_MESSAGES, `must hold at most ${MAX_CHAT_MESSAGES} messages (${MAX_HISTORY_TURNS} turns of history)`),
});

/** `POST /v1/completions`. */
export const completionSchema = z.object({ ...common, prompt: z.string().min(1, 'must not be empty') });

/** Most inputs one embeddings request may carry. */
export const MAX_EMBEDDING_INPUTS = 256;

const embeddingText = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_TEXT_CHARS, `must be at most ${MAX_TEXT_CHARS} characters`);

/** `POST /v1/embeddings`: text only (OpenAI also takes token ids, which belong to its own tokenizers). */
export const embeddingSchema = z.object({
  model: z.string().min(1),
  input: z.union(
    [
      embeddingText,
      z
        .array(embeddingText)
        .min(1, 'must hold at least one text')
        .max(MAX_EMBEDDING_INPUTS, `must hold at most ${MAX_EMBEDDING_INPUTS} texts`),
    ],
    { error: 'must be a text or an array of texts (token ids are not taken)' },
  ),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().min(1).optional(),
  user: z.string().min(1).max(256).optional(),
});

export type EmbeddingRequest = z.output<typeof embeddingSchema>;
export type ChatCompletionRequest = z.output<typeof chatCompletionSchema>;
export type CompletionRequest = z.output<typeof completionSchema>;

/** The text of a message's content, its text parts joined. */
export function contentText(content: z.output<typeof text> | null | undefined): string {
  if (content === null || content === undefined) return '';
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}
