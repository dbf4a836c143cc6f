import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { CONTRACT_VERSION, type MessageInput } from '../../contract/message-contract.js';
import type { Logger } from '../../logging/logger.js';
import type { MessageProducer } from '../../queue/message-producer.js';
import type { ReplyStreamReader } from '../../queue/reply-stream-reader.js';
import type { ReplyRepository } from '../../storage/reply-repository.js';
import { generateSchema, SECURED } from '../api-schemas.js';
import { waitForReply } from '../../connections/reply-waiter.js';
import { keyOf } from '../request-tenant.js';
import { failedReplyError } from '../http-error.js';
import type { TenantQuotas } from '../tenant-quotas.js';

/** What `/generate` works with. */
export interface GenerateRoutesOptions {
  producer: MessageProducer;
  quotas: TenantQuotas;
  replies: ReplyRepository;
  streams: ReplyStreamReader;
  log: Logger;
  /** How long `/generate` waits for the reply before answering 504 with the message id (`AVA_REPLY_TIMEOUT_MS`). */
  replyTimeoutMs: number;
}

/** `GET` and `POST /generate`: enqueue and wait, in the shapes the origin document's clients use. */
export const generateRoutes: FastifyPluginAsyncZod<GenerateRoutesOptions> = async (app, opts) => {
  const generate = async (req: FastifyRequest, reply: FastifyReply, context: string) => {
    const messageId = randomUUID();
    const message: MessageInput = {
      v: CONTRACT_VERSION,
      tenant: req.tenant,
      messageId,
      conversationId: `generate-${messageId}`,
      userId: req.caller.name || 'api',
      text: context,
    };
    await opts.quotas.admit(req.tenant, [message], () => '');
    await opts.producer.enqueue(message);
    const doc = await waitForReply(opts, keyOf(req, messageId), opts.replyTimeoutMs);
    if (!doc) return reply.code(504).send({ status: 'pending', data: { messageId } });
    if (doc.status === 'failed')
      return reply.code(failedReplyError(doc.error).status).send({ status: 'error', error: doc.error });
    return { status: 'ok', data: { generated_text: doc.text } };
  };
  const summary = 'Enqueue and wait (origin-document clients): {"status":"ok","data":{"generated_text":"…"}}';
  app.get(
    '/generate',
    {
      onRequest: app.requireScope('enqueue'),
      schema: { ...SECURED, summary, tags: ['generate'], querystring: generateSchema },
    },
    (req, reply) => generate(req, reply, req.query.context),
  );
  app.post(
    '/generate',
    {
      onRequest: app.requireScope('enqueue'),
      schema: { ...SECURED, summary, tags: ['generate'], body: generateSchema },
    },
    (req, reply) => generate(req, reply, req.body.context),
  );
};
