import type { FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DialogueState } from '../../conversation/dialogue-state.js';
import type { Logger } from '../../logging/logger.js';
import type { MessageProducer } from '../../queue/message-producer.js';
import type { ReplyStreamReader } from '../../queue/reply-stream-reader.js';
import type { ReplyRepository } from '../../storage/reply-repository.js';
import {
  idParamSchema,
  MAX_MESSAGES_PER_REQUEST,
  messagesBodySchema,
  SECURED,
  waitQuerySchema,
} from '../api-schemas.js';
import { HttpError, zodValidatorCompiler } from '../http-error.js';
import { waitForReply } from '../../connections/reply-waiter.js';
import { avaSseFormat, respondWithSse } from '../sse-reply-relay.js';
import { asTenant, keyOf } from '../request-tenant.js';
import { presentReply, presentStatus } from '../../conversation/presented.js';
import type { TenantQuotas } from '../tenant-quotas.js';

/** What the message routes work with. */
export interface MessageRoutesOptions {
  producer: MessageProducer;
  quotas: TenantQuotas;
  replies: ReplyRepository;
  dialogue: DialogueState;
  streams: ReplyStreamReader;
  log: Logger;
  /** How long an SSE stream waits for its reply before it ends with a `timeout` event (`AVA_REPLY_TIMEOUT_MS`). */
  replyTimeoutMs: number;
}
/** Period of the SSE keep-alive comment. */
const STREAM_KEEPALIVE_MS = 15_000;
/** A Redis stream entry id, as SSE clients send it back in `Last-Event-ID`. */
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const streamHeaders = z.looseObject({
  'last-event-id': z.string().regex(STREAM_ID, 'must be an event id this stream sent (<ms>-<seq>)').optional(),
});

/**
 * The body of `POST /v1/messages` is checked for its shape here and against the message contract by the producer,
 * which names each bad field with its index (`[3].text`); the route's schema documents it.
 */
const messagesBodyValidator: FastifySchemaCompiler<unknown> = ({ httpPart, ...rest }) => {
  if (httpPart !== 'body')
    return zodValidatorCompiler({ httpPart, ...rest } as Parameters<typeof zodValidatorCompiler>[0]);
  return (body: unknown) => {
    if (Array.isArray(body) && (body.length === 0 || body.length > MAX_MESSAGES_PER_REQUEST))
      return {
        error: new HttpError(400, 'ERR_CONTRACT', `send 1 to ${MAX_MESSAGES_PER_REQUEST} messages, got ${body.length}`),
      };
    if (!Array.isArray(body) && (typeof body !== 'object' || body === null))
      return {
        error: new HttpError(400, 'ERR_CONTRACT', 'the body must be a JSON message object or an array of them'),
      };
    return { value: body };
  };
};

/** Enqueues a request's message or messages as its tenant's, within the tenant's quotas. */
async function enqueueBody(req: FastifyRequest, producer: MessageProducer, quotas: TenantQuotas) {
  const many = Array.isArray(req.body);
  const pathOf = (i: number) => (many ? `[${i}].` : '');
  const inputs = (many ? (req.body as unknown[]) : [req.body]).map((m, i) => asTenant(req, m, pathOf(i)));
  await quotas.admit(req.tenant, inputs, pathOf);
  return many ? producer.enqueueMany(inputs as never[]) : producer.enqueue(inputs[0] as never);
}

/** Enqueue messages, read one (long-polling with `?wait=`), and stream its reply as Server-Sent Events. */
export const messageRoutes: FastifyPluginAsyncZod<MessageRoutesOptions> = async (app, opts) => {
  const { producer, replies, dialogue, streams, quotas, log } = opts;

  app.post(
    '/v1/messages',
    {
      onRequest: app.requireScope('enqueue'),
      validatorCompiler: messagesBodyValidator,
      schema: {
        ...SECURED,
        summary: `Enqueue one message or an array (up to AVA_API_MAX_MESSAGES_PER_REQUEST) of the token's tenant; 202 when accepted (again: the same messageId with the same content), 400 naming every bad field, 409 for a messageId used with other content, 413/429 past a quota`,
        tags: ['messages'],
        body: messagesBodySchema,
      },
    },
    async (req, reply) => reply.code(202).send(await enqueueBody(req, producer, quotas)),
  );

  app.get(
    '/v1/messages/:id',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary: 'Status and reply; long-polls with ?wait=ms; 404 when unknown',
        tags: ['messages'],
        params: idParamSchema,
        querystring: waitQuerySchema,
      },
    },
    async (req) => {
      const { id } = req.params;
      const key = keyOf(req, id);
      const doc = await waitForReply({ replies, streams, log }, key, req.query.wait);
      if (doc) return presentReply(doc);
      // Not final yet: queued (the job in Redis) or processing (the worker's record), with their timestamps.
      const status = await dialogue.message(key);
      if (!status) throw new HttpError(404, 'ERR_NOT_FOUND', `no message ${id}`);
      return presentStatus(status);
    },
  );

  app.get(
    '/v1/messages/:id/stream',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary:
          'The reply as Server-Sent Events: token pieces from the first (resumable with Last-Event-ID), reset, then reply or timeout',
        tags: ['messages'],
        params: idParamSchema,
        headers: streamHeaders,
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const key = keyOf(req, id);
      const known = (await streams.exists(key)) || (await replies.has(key)) || (await producer.view.has(key));
      if (!known) throw new HttpError(404, 'ERR_NOT_FOUND', `no message ${id}`);
      const closed = quotas.openStream(req.tenant);
      reply.raw.once('close', closed);
      // Server-Sent Events: the reply's tokens from the first one (replayed when generation began earlier), `reset`
      // when a retried message starts over, then `reply` (the stored document) or `timeout`. After the hijack the relay
      // answers its own errors (an `error` event, then the end of the stream).
      const format = avaSseFormat(id, presentReply);
      await respondWithSse(
        reply,
        {
          streams,
          readReply: (messageId) => replies.get(messageId),
          format,
          log,
          timeoutMs: opts.replyTimeoutMs,
          keepAliveMs: STREAM_KEEPALIVE_MS,
        },
        key,
        req.headers['last-event-id'],
      );
    },
  );
};
