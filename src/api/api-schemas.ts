import { z } from 'zod';
import { messageSchema } from '../contract/message-contract.js';
import { chatCompletionSchema, completionSchema } from './openai-schemas.js';

/** Most messages in one POST /v1/messages. */
export const MAX_MESSAGES_PER_REQUEST = 1000;

/** Path parameter of message and conversation routes: the contract's id rule. */
export const idParamSchema = z.strictObject({ id: messageSchema.shape.messageId });

/** `?wait=` of GET /v1/messages/:id: long-poll up to 30 s. */
export const waitQuerySchema = z.strictObject({ wait: z.coerce.number().int().min(0).max(30_000).default(0) });

/** Query of GET /v1/replies. */
export const repliesQuerySchema = z.strictObject({
  since: z.string().max(512).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  intent: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  status: z.enum(['replied', 'failed']).optional(),
  order: z.enum(['asc', 'desc']).default('asc'),
});

/** `context` of /generate (query or JSON body), as the origin document's clients send it. */
export const generateSchema = z.strictObject({ context: z.string().min(1).max(8000) });

/** OpenAPI 3.1 document generated from the same schemas the server validates with. */
export function openApiDocument(): Record<string, unknown> {
  const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const message = json(messageSchema);
  const error = { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, issues: { type: 'array' } } } } };
  const secured = { security: [{ bearer: [] }] };
  const params = (schema: z.ZodObject, where: 'path' | 'query') =>
    Object.entries((json(schema) as { properties: Record<string, unknown> }).properties).map(([name, s]) => ({ name, in: where, required: where === 'path', schema: s }));
  return {
    openapi: '3.1.0',
    info: { title: 'AVA virtual-assistant API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Message: message, Error: error } },
    paths: {
      '/v1/messages': {
        post: {
          ...secured,
          summary: `Enqueue one message or an array of up to ${MAX_MESSAGES_PER_REQUEST}`,
          requestBody: { content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/Message' }, { type: 'array', maxItems: MAX_MESSAGES_PER_REQUEST, items: { $ref: '#/components/schemas/Message' } }] } } } },
          responses: { 202: { description: 'queued' }, 400: { description: 'invalid, every bad field named' } },
        },
      },
      '/v1/messages/{id}': { get: { ...secured, summary: 'Status and reply; long-polls with ?wait=ms', parameters: [...params(idParamSchema, 'path'), ...params(waitQuerySchema, 'query')], responses: { 200: { description: 'the message' }, 404: { description: 'unknown' } } } },
      '/v1/conversations/{id}': { get: { ...secured, summary: 'A conversation with its recent turns', parameters: params(idParamSchema, 'path'), responses: { 200: { description: 'the conversation' }, 404: { description: 'unknown' } } } },
      '/v1/stats': { get: { ...secured, summary: 'Queue depth, live workers, reply counts and recent latency, for dashboards', responses: { 200: { description: 'stats' } } } },
      '/v1/replies': { get: { ...secured, summary: 'Stored replies, oldest (or with order=desc newest) first, cursor-paginated', parameters: params(repliesQuerySchema, 'query'), responses: { 200: { description: '{ items, next }' } } } },
      '/generate': {
        get: { ...secured, summary: 'Enqueue and wait (origin-document clients)', parameters: params(generateSchema, 'query'), responses: { 200: { description: '{"status":"ok","data":{"generated_text":"…"}}' } } },
        post: { ...secured, summary: 'Enqueue and wait (origin-document clients)', requestBody: { content: { 'application/json': { schema: json(generateSchema) } } }, responses: { 200: { description: '{"status":"ok","data":{"generated_text":"…"}}' } } },
      },
      '/v1/models': { get: { ...secured, summary: 'OpenAI-compatible: the served model', responses: { 200: { description: 'a list with one model' } } } },
      '/v1/chat/completions': {
        post: { ...secured, summary: 'OpenAI-compatible chat completion (stream: SSE chunks ending in [DONE]); header X-Ava-Conversation-Id files it under a conversation', requestBody: { content: { 'application/json': { schema: json(chatCompletionSchema) } } }, responses: { 200: { description: 'chat.completion' }, 400: { description: "OpenAI's error object, with param" } } },
      },
      '/v1/completions': {
        post: { ...secured, summary: 'OpenAI-compatible text completion', requestBody: { content: { 'application/json': { schema: json(completionSchema) } } }, responses: { 200: { description: 'text_completion' } } },
      },
      '/metrics': { get: { ...secured, summary: 'Prometheus metrics: queue, live workers and their aggregated metrics', responses: { 200: { description: 'text exposition format' } } } },
      '/healthz': { get: { summary: 'Process up (no auth)', responses: { 200: { description: 'ok' } } } },
      '/readyz': { get: { summary: 'Redis and database reachable, a live worker heartbeat with its model loaded (no auth)', responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } } } },
    },
  };
}
