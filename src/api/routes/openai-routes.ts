import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { MAX_HISTORY_TURNS } from '../../contract/message-contract.js';
import { SECURED } from '../api-schemas.js';
import { HttpError, logHttpFailure, toHttpError, withStatus } from '../http-error.js';
import { OpenAiCompletions, type OpenAiDeps } from '../openai-completion.js';
import { chatCompletionSchema, completionSchema, contentText } from '../openai-schemas.js';
import { openAiEmbeddingRoutes } from './openai-embedding-routes.js';

/**
 * `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions` in OpenAI's request and response shapes,
 * so clients written against OpenAI's API (its official SDKs included) work unchanged. Each request becomes a message
 * on the queue; the chat history the client sends is the dialogue; the answer is the stored reply, and a streamed
 * answer's chunks concatenate to exactly its text. Errors come in OpenAI's error object. A Fastify plugin: its error
 * handler applies to these routes only.
 */
export const openAiRoutes: FastifyPluginAsyncZod<OpenAiDeps> = async (app, deps) => {
  app.setErrorHandler((err, _req, reply) => {
    const http = toHttpError(err);
    logHttpFailure(deps.log, err, http, 'OpenAI-compatible request');
    return withStatus(reply, http).send(openAiError(http));
  });

  const completions = new OpenAiCompletions(deps);
  const models = [...completions.served, ...(deps.encoder ? [deps.encoder.id] : [])];
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
  if (deps.encoder)
    await app.register(openAiEmbeddingRoutes, { encoder: deps.encoder, concurrency: deps.embeddingConcurrency });

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
      return completions.complete(
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
      completions.complete(req, reply, req.body, { text: req.body.prompt, history: [], instructions: '' }, 'text'),
  );
};

/** OpenAI's error object for an HTTP error: a type by status, the first bad field as `param`, AVA's code. */
function openAiError(http: HttpError) {
  const type =
    http.status === 429
      ? 'rate_limit_error'
      : http.status === 401
        ? 'authentication_error'
        : http.status === 403
          ? 'permission_error'
          : http.status >= 500
            ? 'server_error'
            : 'invalid_request_error';
  const param = http.issues?.[0]?.path.replace(/^body\./, '') ?? null;
  return { error: { message: http.message, type, param, code: http.code } };
}
