import { z } from 'zod';
import { messageSchema } from '../contract/message-contract.js';

/** Most messages in one POST /v1/messages that the schema admits; `AVA_API_MAX_MESSAGES_PER_REQUEST` bounds it lower. */
export const MAX_MESSAGES_PER_REQUEST = 1000;

/** Path parameter of message and conversation routes: the contract's id rule. */
export const idParamSchema = z.strictObject({ id: messageSchema.shape.messageId });

/** `?wait=` of GET /v1/messages/:id: long-poll up to 30 s. */
export const waitQuerySchema = z.strictObject({ wait: z.coerce.number().int().min(0).max(30_000).default(0) });

/** Query of GET /v1/replies. */
export const repliesQuerySchema = z.strictObject({
  since: z.string().max(512).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  intent: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
  status: z.enum(['replied', 'failed']).optional(),
  order: z.enum(['asc', 'desc']).default('asc'),
});

/** `context` of /generate (query or JSON body), as the origin document's clients send it. */
export const generateSchema = z.strictObject({ context: z.string().min(1).max(8000) });

/** Body of POST /v1/messages: one message or an array of them (documented; the contract checks it). */
export const messagesBodySchema = z.union([messageSchema, z.array(messageSchema).min(1).max(MAX_MESSAGES_PER_REQUEST)]);

/** AVA's error body, as every route but the OpenAI-compatible ones answers errors. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});

/** Schemas that the OpenAPI document names as components (`#/components/schemas/<id>`) instead of inlining. */
export const openApiComponents = z.registry<{ id: string }>();
openApiComponents.add(messageSchema, { id: 'Message' });
openApiComponents.add(errorBodySchema, { id: 'Error' });

/** OpenAPI metadata of a route that needs a bearer token. */
export const SECURED = { security: [{ bearer: [] }] };
