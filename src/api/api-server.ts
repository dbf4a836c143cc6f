import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { AvaConfig } from '../config/config.js';
import { CONTRACT_VERSION } from '../contract/message-contract.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import { ContractError, ServiceUnavailableError } from '../errors/errors.js';
import type { Logger } from '../logging/logger.js';
import type { MessageProducer } from '../queue/message-producer.js';
import { ConversationRepository } from '../storage/conversation-repository.js';
import { ReplyRepository } from '../storage/reply-repository.js';
import { DialogueState } from '../conversation/dialogue-state.js';
import type { Database } from '../storage/database.js';
import { generateSchema, idParamSchema, MAX_MESSAGES_PER_REQUEST, openApiDocument, repliesQuerySchema, waitQuerySchema } from './api-schemas.js';
import { BearerAuth, type Scope } from './bearer-auth.js';
import type { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import { SseReplyRelay, avaSseFormat } from './sse-reply-relay.js';
import { HttpError, parse } from './http-error.js';
import { waitForReply } from './reply-waiter.js';
import { openAiRoutes } from './openai-routes.js';
import { ApiMetrics } from '../metrics/api-metrics.js';
import { heartbeatKey, liveWorkers } from '../metrics/worker-heartbeat.js';
import { collectStats } from '../metrics/service-stats.js';
import { BadCursorError, readReplyFeed } from '../storage/reply-feed.js';

/** What the API needs: configuration, a producer, the database, Redis for readiness and token streams, a logger. */
export interface ApiDeps {
  config: AvaConfig;
  producer: MessageProducer;
  database: Database;
  redis: Redis;
  /** Replays and follows workers' reply streams for SSE clients. */
  streams: ReplyStreamReader;
  log: Logger;
}

/** How long an SSE stream waits for its reply before it ends with a `timeout` event. */
const STREAM_TIMEOUT_MS = 60_000;
/** Period of the SSE keep-alive comment. */
const STREAM_KEEPALIVE_MS = 15_000;
/** A Redis stream entry id, as SSE clients send it back in `Last-Event-ID`. */
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

const require = createRequire(import.meta.url);

/**
 * The HTTP door for systems that don't speak BullMQ: enqueue, read replies (with long-polling), conversations, a
 * cursor-paginated reply feed for dashboards, the origin document's `/generate`, OpenAPI, health. Every route but
 * health needs a bearer token with the right scope; errors are JSON naming the problem, never a stack trace.
 */
export async function buildApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, producer, database } = deps;
  const replies = new ReplyRepository(database);
  const waiting = { replies, streams: deps.streams, log: deps.log };
  const auth = new BearerAuth(config.apiTokens);
  const conversations = new ConversationRepository(database, { maxTurns: config.historyTurns, maxChars: config.historyChars });
  const dialogue = new DialogueState(database, conversations, producer.view);
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger, bodyLimit: config.apiBodyLimitBytes });

  // Requests are counted per authenticated token name, after authentication (the limiter runs as the last preHandler
  // of a route, behind its guard): a raw header as the key would give each spelling of "Bearer" a fresh bucket.
  app.decorateRequest('caller', '');
  await app.register(rateLimit, {
    max: config.apiRateLimit,
    timeWindow: 60_000,
    hook: 'preHandler',
    keyGenerator: (req) => (req.caller ? `token:${req.caller}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) => new HttpError(429, 'ERR_RATE_LIMIT', `rate limit of ${ctx.max} requests per minute exceeded; retry in ${Math.ceil(ctx.ttl / 1000)} s`),
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) } });
    if (err instanceof ContractError) return reply.code(400).send({ error: { code: err.code, message: err.message, issues: err.issues } });
    // Redis could not confirm an enqueue (too few replicas): nothing is promised, the client retries.
    if (err instanceof ServiceUnavailableError) return reply.code(503).send({ error: { code: err.code, message: err.message } });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.log.error({ err }, 'request failed');
    // Fastify's own 4xx (malformed JSON, wrong content type, body too large) keep their reason; a 500 says nothing inside.
    return reply.code(status).send({ error: { code: status === 500 ? 'ERR_INTERNAL' : (err.code ?? 'ERR_REQUEST'), message: status === 500 ? 'internal error' : err.message } });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } }));

  const guard = (scope: Scope) => async (req: FastifyRequest) => {
    const result = auth.check(req.headers.authorization, scope);
    if (!result.ok) throw new HttpError(result.status, result.status === 401 ? 'ERR_UNAUTHENTICATED' : 'ERR_FORBIDDEN', result.message);
    req.caller = result.name;
  };

  // The dashboard's page and scripts carry no data (it comes from the authenticated routes), so they are public.
  const dashboard = await dashboardAssets();
  for (const [url, asset] of Object.entries(dashboard)) {
    app.get(url, { config: { rateLimit: false } }, async (_req, reply) => reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body));
  }
  const metrics = new ApiMetrics(producer.view, deps.redis, heartbeatKey(config.queuePrefix, config.queueName));
  app.get('/healthz', { config: { rateLimit: false } }, async () => ({ status: 'ok' }));
  app.get('/metrics', { preHandler: guard('read') }, async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
  app.get('/readyz', { config: { rateLimit: false } }, async (_req, reply) => {
    const checks = await Promise.all([
      deps.redis.ping().then(() => true, () => false),
      database.ping(),
      liveWorkers(deps.redis, heartbeatKey(config.queuePrefix, config.queueName)).then((w) => w.length > 0, () => false),
    ]);
    const [redis, db, workers] = checks;
    return reply.code(checks.every(Boolean) ? 200 : 503).send({ status: checks.every(Boolean) ? 'ready' : 'not ready', checks: { redis, database: db, workers } });
  });
  app.get('/openapi.json', { preHandler: guard('read') }, async () => openApiDocument());

  app.post('/v1/messages', { preHandler: guard('enqueue') }, async (req, reply) => {
    const body = req.body;
    const many = Array.isArray(body);
    if (many && (body.length === 0 || body.length > MAX_MESSAGES_PER_REQUEST)) throw new HttpError(400, 'ERR_CONTRACT', `send 1 to ${MAX_MESSAGES_PER_REQUEST} messages, got ${body.length}`);
    if (!many && (typeof body !== 'object' || body === null)) throw new HttpError(400, 'ERR_CONTRACT', 'the body must be a JSON message object or an array of them');
    const results = await producer.enqueueMany((many ? body : [body]) as never[]);
    return reply.code(202).send(many ? results : results[0]);
  });

  app.get('/v1/messages/:id', { preHandler: guard('read') }, async (req, reply) => {
    const { id } = parse(idParamSchema, req.params, 'path');
    const { wait } = parse(waitQuerySchema, req.query, 'query');
    const doc = await waitForReply(waiting, id, wait);
    if (doc) return present(doc);
    // Not final yet: queued (the job in Redis) or processing (the worker's record), with their timestamps.
    const status = await dialogue.message(id);
    if (!status) return reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no message ${id}` } });
    return status;
  });

  app.get('/v1/messages/:id/stream', { preHandler: guard('read') }, async (req, reply) => {
    const { id } = parse(idParamSchema, req.params, 'path');
    const lastEventId = req.headers['last-event-id'];
    if (lastEventId !== undefined && (typeof lastEventId !== 'string' || !STREAM_ID.test(lastEventId))) {
      throw new HttpError(400, 'ERR_REQUEST', 'header.last-event-id: must be an event id this stream sent (<ms>-<seq>)');
    }
    const known = (await deps.streams.exists(id)) || (await replies.has(id)) || (await producer.view.has(id));
    if (!known) return reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no message ${id}` } });
    // Server-Sent Events: the reply's tokens from the first one (replayed when generation began earlier), `reset`
    // when a retried message starts over, then `reply` (the stored document) or `timeout`.
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    await new SseReplyRelay(
      { streams: deps.streams, readReply: (messageId) => replies.get(messageId), format: avaSseFormat(id, present), log: deps.log, timeoutMs: STREAM_TIMEOUT_MS, keepAliveMs: STREAM_KEEPALIVE_MS },
      reply.raw,
      id,
      lastEventId,
    ).start();
  });

  app.get('/v1/conversations/:id', { preHandler: guard('read') }, async (req, reply) => {
    const { id } = parse(idParamSchema, req.params, 'path');
    const view = await dialogue.conversation(id);
    if (!view) return reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no conversation ${id}` } });
    return view;
  });

  app.get('/v1/replies', { preHandler: guard('read') }, async (req) => {
    const q = parse(repliesQuerySchema, req.query, 'query');
    try {
      const page = await readReplyFeed(database, q);
      return { items: page.items.map(present), next: page.next };
    } catch (err) {
      if (err instanceof BadCursorError) throw new HttpError(400, 'ERR_REQUEST', `query.since: ${err.message}`);
      throw err;
    }
  });

  app.get('/v1/stats', { preHandler: guard('read') }, async () =>
    collectStats(producer.view, deps.redis, heartbeatKey(config.queuePrefix, config.queueName)),
  );

  const generate = async (req: FastifyRequest, reply: FastifyReply, input: unknown) => {
    const { context } = parse(generateSchema, input, req.method === 'GET' ? 'query' : 'body');
    const messageId = randomUUID();
    await producer.enqueue({ v: CONTRACT_VERSION, messageId, conversationId: `generate-${messageId}`, userId: req.caller || 'api', text: context });
    const doc = await waitForReply(waiting, messageId, 30_000);
    if (!doc) return reply.code(504).send({ status: 'pending', data: { messageId } });
    if (doc.status === 'failed') return reply.code(422).send({ status: 'error', error: doc.error });
    return { status: 'ok', data: { generated_text: doc.text } };
  };
  app.get('/generate', { preHandler: guard('enqueue') }, (req, reply) => generate(req, reply, req.query));
  // OpenAI's shapes, with its error object: an encapsulated plugin keeps that error handler to its own routes.
  await app.register(openAiRoutes, { producer, replies, streams: deps.streams, log: deps.log, guard, modelId: path.basename(config.model) });
  app.post('/generate', { preHandler: guard('enqueue') }, (req, reply) => generate(req, reply, req.body));
  return app;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Name of the token that authenticated the request; empty on public routes. */
    caller: string;
  }
}

/** The dashboard's files: the page, its script, and uPlot from node_modules (no build step). */
async function dashboardAssets(): Promise<Record<string, { type: string; body: string }>> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  return {
    '/': { type: 'text/html; charset=utf-8', body: await readFile(path.join(here, 'dashboard/index.html'), 'utf8') },
    '/dashboard.js': { type: 'text/javascript; charset=utf-8', body: await readFile(path.join(here, 'dashboard/dashboard.js'), 'utf8') },
    '/assets/uplot.iife.min.js': { type: 'text/javascript; charset=utf-8', body: await readFile(path.join(uplotDir, 'uPlot.iife.min.js'), 'utf8') },
    '/assets/uplot.min.css': { type: 'text/css; charset=utf-8', body: await readFile(path.join(uplotDir, 'uPlot.min.css'), 'utf8') },
  };
}

function present(doc: ReplyDocument) {
  const { _id, ...rest } = doc;
  return { messageId: _id, ...rest };
}
