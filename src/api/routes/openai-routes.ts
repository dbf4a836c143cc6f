import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  CONTRACT_VERSION,
  MAX_HISTORY_TURNS,
  messageSchema,
  type MessageInput,
} from '../../contract/message-contract.js';
import type { ReplyDocument } from '../../storage/reply-document.js';
import type { Logger } from '../../logging/logger.js';
import type { MessageProducer } from '../../queue/message-producer.js';
import type { ReplyStreamReader } from '../../queue/reply-stream-reader.js';
import type { ReplyRepository } from '../../storage/reply-repository.js';
import { SECURED } from '../api-schemas.js';
import { HttpError, httpErrorOf, withStatus } from '../http-error.js';
import { waitForReply } from '../reply-waiter.js';
import {
  chatCompletionSchema,
  completionSchema,
  contentText,
  type ChatCompletionRequest,
  type CompletionRequest,
} from '../openai-schemas.js';
import { SseReplyRelay, type SseFormat } from '../sse-reply-relay.js';
import type { EncoderOnDemand } from '../../embedding/encoder-on-demand.js';
import { openAiEmbeddingRoutes } from './openai-embedding-routes.js';

/** What the OpenAI-compatible routes need. */
export interface OpenAiDeps {
  producer: MessageProducer;
  replies: ReplyRepository;
  streams: ReplyStreamReader;
  log: Logger;
  /**
   * The assistant's model id (`GET /v1/models`): intents, knowledge and handlers answer, the model when none does.
   * `<modelId>-raw` is the same model alone: plain completion, no intents.
   */
  modelId: string;
  /** The sentence encoder, served by `POST /v1/embeddings` and listed as a model; none without one. */
  encoder?: EncoderOnDemand;
}

/** Suffix of the raw model's id: the model alone, no intents. */
export const RAW_MODEL_SUFFIX = '-raw';

/** Header naming the AVA conversation a request belongs to; without it every request is a conversation of its own. */
export const CONVERSATION_HEADER = 'x-ava-conversation-id';
/** Longest wait for a reply before a request fails with a timeout, in ms. */
const REPLY_TIMEOUT_MS = 120_000;
const USER_ID = messageSchema.shape.userId;

/**
 * `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions` in OpenAI's request and response shapes,
 * so clients written against OpenAI's API (its official SDKs included) work unchanged. Each request becomes a message
 * on the queue; the chat history the client sends is the dialogue; the answer is the stored reply, and a streamed
 * answer's chunks concatenate to exactly its text. Errors come in OpenAI's error object. A Fastify plugin: its error
 * handler applies to these routes only.
 */
export const openAiRoutes: FastifyPluginAsyncZod<OpenAiDeps> = async (app, deps) => {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const http = httpErrorOf(err);
    const status =
      http?.status ?? (err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500);
    if (status >= 500) deps.log.error({ err }, 'OpenAI-compatible request failed');
    const type =
      status === 429
        ? 'rate_limit_error'
        : status === 401
          ? 'authentication_error'
          : status === 403
            ? 'permission_error'
            : status >= 500
              ? 'server_error'
              : 'invalid_request_error';
    const param = http?.issues?.[0]?.path.replace(/^body\./, '') ?? null;
    const message = status >= 500 && !http ? 'internal error' : err.message;
    return (http ? withStatus(reply, http) : reply.code(status)).send({
      error: { message, type, param, code: http?.code ?? err.code ?? null },
    });
  });

  const rawModelId = `${deps.modelId}${RAW_MODEL_SUFFIX}`;
  const models = [deps.modelId, rawModelId, ...(deps.encoder ? [deps.encoder.id] : [])];
  app.get(
    '/v1/models',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary: 'OpenAI-compatible: the assistant, the raw model and the sentence encoder',
        tags: ['openai'],
      },
    },
    async () => ({
      object: 'list',
      data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'ava' })),
    }),
  );
  if (deps.encoder) await app.register(openAiEmbeddingRoutes, { encoder: deps.encoder });

  app.post(
    '/v1/chat/completions',
    {
      onRequest: app.requireScope('enqueue'),
      schema: {
        ...SECURED,
        summary:
          'OpenAI-compatible chat completion (stream: SSE chunks ending in [DONE]); header X-Ava-Conversation-Id files it under a conversation',
        tags: ['openai'],
        body: chatCompletionSchema,
      },
    },
    async (req, reply) => {
      const body = req.body;
      const turns = body.messages.filter((m) => m.role === 'user' || m.role === 'assistant');
      const last = turns[turns.length - 1];
      if (!last || last.role !== 'user')
        throw new HttpError(400, 'ERR_REQUEST', 'the last user or assistant message must be from the user', [
          { path: 'messages', message: 'must end with a user message' },
        ]);
      // System and developer messages, wherever they stand, are the model's instructions.
      const instructions = body.messages
        .filter((m) => m.role === 'system' || m.role === 'developer')
        .map((m) => contentText(m.content))
        .filter((t) => t.trim())
        .join('\n');
      const history: Array<{ user: string; assistant: string }> = [];
      for (let i = 0; i < turns.length - 1; i++) {
        if (turns[i].role !== 'user') continue;
        const next = turns[i + 1];
        history.push({
          user: contentText(turns[i].content),
          assistant: next.role === 'assistant' ? contentText(next.content) : '',
        });
      }
      return complete(
        req,
        reply,
        body,
        { text: contentText(last.content), history: history.slice(-MAX_HISTORY_TURNS), instructions },
        'chat',
      );
    },
  );

  app.post(
    '/v1/completions',
    {
      onRequest: app.requireScope('enqueue'),
      schema: { ...SECURED, summary: 'OpenAI-compatible text completion', tags: ['openai'], body: completionSchema },
    },
    async (req, reply) =>
      complete(req, reply, req.body, { text: req.body.prompt, history: [], instructions: '' }, 'text'),
  );

  async function complete(
    req: FastifyRequest,
    reply: FastifyReply,
    body: ChatCompletionRequest | CompletionRequest,
    input: { text: string; history: Array<{ user: string; assistant: string }>; instructions: string },
    kind: 'chat' | 'text',
  ) {
    if (body.model !== deps.modelId && body.model !== rawModelId) {
      throw new HttpError(
        404,
        'model_not_found',
        `the model ${JSON.stringify(body.model)} does not exist; this server serves ${models
          .slice(0, 2)
          .map((m) => JSON.stringify(m))
          .join(' and ')}`,
        [{ path: 'model', message: 'unknown model' }],
      );
    }
    const { text, history, instructions } = input;
    // The raw model: a chat goes to the model with its dialogue, a text completion continues the prompt as it is.
    const mode = body.model === rawModelId ? (kind === 'chat' ? 'dialogue' : 'text') : undefined;
    const messageId = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const maxNewTokens =
      ('max_completion_tokens' in body ? body.max_completion_tokens : undefined) ?? body.max_tokens ?? undefined;
    const generation = {
      ...(maxNewTokens ? { maxNewTokens } : {}),
      ...(typeof body.temperature === 'number' ? { temperature: body.temperature } : {}),
      ...(typeof body.top_p === 'number' ? { topP: body.top_p } : {}),
      ...(body.stop ? { stop: typeof body.stop === 'string' ? [body.stop] : body.stop } : {}),
      ...(typeof body.seed === 'number' ? { seed: body.seed } : {}),
    };
    const message: MessageInput = {
      v: CONTRACT_VERSION,
      messageId,
      conversationId: conversationOf(req, messageId),
      userId: userOf(body.user, req.caller),
      text,
      ...(Object.keys(generation).length > 0 ? { generation } : {}),
      ...(history.length > 0 ? { history } : {}),
      ...(instructions ? { instructions } : {}),
      ...(mode ? { mode } : {}),
    };
    await deps.producer.enqueue(message);
    const created = Math.floor(Date.now() / 1000);
    if (body.stream) {
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      const format = openAiSseFormat({
        id: messageId,
        created,
        model: body.model,
        kind,
        includeUsage: body.stream_options?.include_usage === true,
      });
      await new SseReplyRelay(
        {
          streams: deps.streams,
          readReply: (id) => deps.replies.get(id),
          format,
          log: deps.log,
          timeoutMs: REPLY_TIMEOUT_MS,
          keepAliveMs: 15_000,
        },
        reply.raw,
        messageId,
        undefined,
      ).start();
      return;
    }
    const doc = await waitForReply(deps, messageId, REPLY_TIMEOUT_MS);
    if (!doc)
      throw new HttpError(
        504,
        'timeout',
        `no reply within ${REPLY_TIMEOUT_MS / 1000} s; it will still be stored as message ${messageId}`,
      );
    if (doc.status === 'failed')
      throw new HttpError(500, doc.error?.code ?? 'ERR_INTERNAL', doc.error?.message ?? 'the message failed');
    const choice =
      kind === 'chat'
        ? {
            index: 0,
            message: { role: 'assistant', content: doc.text ?? '', refusal: null },
            logprobs: null,
            finish_reason: doc.finishReason ?? 'stop',
          }
        : { index: 0, text: doc.text ?? '', logprobs: null, finish_reason: doc.finishReason ?? 'stop' };
    return {
      id: messageId,
      object: kind === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model: body.model,
      choices: [choice],
      usage: usageOf(doc),
    };
  }
};

function conversationOf(req: FastifyRequest, messageId: string): string {
  const header = req.headers[CONVERSATION_HEADER];
  if (header === undefined) return messageId;
  const parsed = messageSchema.shape.conversationId.safeParse(header);
  if (!parsed.success)
    throw new HttpError(400, 'ERR_REQUEST', `header ${CONVERSATION_HEADER}: ${parsed.error.issues[0].message}`, [
      { path: `header.${CONVERSATION_HEADER}`, message: parsed.error.issues[0].message },
    ]);
  return parsed.data;
}

/** OpenAI's `user` is any string; one that is not an AVA id is kept as a stable hash of it. */
function userOf(user: string | undefined, caller: string): string {
  if (user === undefined) return caller || 'openai';
  return USER_ID.safeParse(user).success
    ? user
    : `user-${createHash('sha256').update(user).digest('hex').slice(0, 24)}`;
}

/** OpenAI's usage object of a stored reply: what it tells its client it used (the model's counts on replies stored before `usage`). */
function usageOf(doc: ReplyDocument) {
  const { prompt, completion } = doc.usage ?? { prompt: doc.tokens.prompt, completion: doc.tokens.generated };
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** OpenAI's streaming chunks: `data: {…chunk}` lines, the finish reason in the last one, then `data: [DONE]`. */
function openAiSseFormat(o: {
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
      if (doc.status === 'failed')
        return error(doc.error?.code ?? 'ERR_INTERNAL', doc.error?.message ?? 'the message failed');
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
