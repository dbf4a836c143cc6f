import path from 'node:path';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { AvaConfig } from '../config/config.js';
import { DialogueState } from '../conversation/dialogue-state.js';
import type { Logger } from '../logging/logger.js';
import type { MessageProducer } from '../queue/message-producer.js';
import type { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import { EncoderOnDemand } from '../embedding/encoder-on-demand.js';
import { encoderDir, openEncoder } from '../embedding/load-encoder.js';
import { ConversationRepository } from '../storage/conversation-repository.js';
import type { Database } from '../storage/database.js';
import { ReplyRepository } from '../storage/reply-repository.js';
import { openApiComponents } from './api-schemas.js';
import { authPlugin } from './auth-plugin.js';
import { FailedAuthLimiter } from './failed-auth-limiter.js';
import type { RedisKeys } from '../queue/redis-keys.js';
import { TenantQuotas } from './tenant-quotas.js';
import { avaErrorHandler, HttpError, zodValidatorCompiler } from './http-error.js';
import { conversationRoutes } from './routes/conversation-routes.js';
import { dashboardRoutes } from './routes/dashboard-routes.js';
import { generateRoutes } from './routes/generate-routes.js';
import { healthRoutes } from './routes/health-routes.js';
import { messageRoutes } from './routes/message-routes.js';
import { metricsRoutes } from './routes/metrics-routes.js';
import { openAiRoutes } from './routes/openai-routes.js';
import { replyRoutes } from './routes/reply-routes.js';
import { speechRoutes } from './routes/speech-routes.js';
import { voiceRoutes } from './routes/voice-routes.js';
import { UploadRepository } from '../storage/upload-repository.js';
import { SpeechRepository } from '../storage/speech-repository.js';
import { synthesizerFor } from '../voice/speech-synthesizer.js';
import { AudioTranscoder } from '../voice/audio-transcoder.js';
import { SpeechCache } from '../voice/speech-cache.js';

/** Longest path parameter: an id of 128 characters, each percent-encoded. */
const MAX_ID_IN_PATH = 3 * 128;
/** Longest a rate-limit check waits for Redis before the request goes on unlimited, in ms. */
const LIMIT_CHECK_TIMEOUT_MS = 200;

/**
 * What the API needs: configuration, the queue's key names, a producer, the database, Redis for readiness and token
 * streams, a logger.
 */
export interface ApiDeps {
  config: AvaConfig;
  keys: RedisKeys;
  producer: MessageProducer;
  database: Database;
  redis: Redis;
  /** Replays and follows workers' reply streams for SSE clients. */
  streams: ReplyStreamReader;
  log: Logger;
}

/**
 * The HTTP door for systems that don't speak BullMQ, as Fastify plugins, one per resource: messages (enqueue, read
 * with long-polling, stream, speak), conversations, the reply feed, metrics and stats, health, the origin document's
 * `/generate`, the OpenAI-compatible routes and the dashboard. Route schemas are zod (validated by
 * {@link zodValidatorCompiler}) and `/openapi.json` is derived from them. Every route but health and the dashboard
 * needs a bearer token with the right scope; errors are JSON naming the problem, never a stack trace.
 */
export async function buildApiServer(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, keys, producer, database, redis, streams, log } = deps;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.api.bodyLimitBytes,
    // Every id the contract accepts (128 characters, percent-encoded at worst three bytes each) fits a path parameter.
    routerOptions: { maxParamLength: MAX_ID_IN_PATH },
    trustProxy: config.api.trustProxy,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setErrorHandler(avaErrorHandler(log));
  app.setNotFoundHandler(async (req) => {
    throw new HttpError(404, 'ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
  });

  // Registered before the routes, whose schemas it collects as they are added.
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'AVA virtual-assistant API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: createJsonSchemaTransform({ schemaRegistry: openApiComponents }),
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: openApiComponents }),
  });
  const limits = await registerLimits(app, config, redis, keys, log);
  const quotas = new TenantQuotas(limits, keys, config.api, log);

  const replies = new ReplyRepository(database);
  const conversations = new ConversationRepository(database, {
    maxTurns: config.history.turns,
    maxChars: config.history.chars,
  });
  const dialogue = new DialogueState(database, conversations, producer.view);
  const heartbeats = keys.workers;
  await app.register(dashboardRoutes);
  await app.register(healthRoutes, { redis, database, heartbeatKey: heartbeats });
  await app.register(metricsRoutes, { queue: producer.view, redis, keys });
  const replyTimeoutMs = config.stream.replyTimeoutMs;
  await app.register(messageRoutes, { producer, replies, dialogue, streams, quotas, log, replyTimeoutMs });
  await app.register(conversationRoutes, { dialogue });
  await app.register(replyRoutes, { database });
  await app.register(voiceRoutes, {
    producer,
    quotas,
    uploads: new UploadRepository(database),
    maxBytes: config.voice.maxBytes,
    maxSeconds: config.voice.maxSeconds,
  });
  await app.register(speechRoutes, {
    replies,
    speech: new SpeechCache(new SpeechRepository(database), synthesizerFor(config), new AudioTranscoder()),
  });
  await app.register(generateRoutes, { producer, replies, streams, quotas, log, replyTimeoutMs });
  await registerOpenAi(app, deps, replies, quotas);
  app.get('/openapi.json', { onRequest: app.requireScope('read'), schema: { hide: true } }, async () => app.swagger());
  return app;
}

/**
 * Authentication and the rate limit, both counted in Redis over every API process, on a connection of their own
 * that gives up sooner than the request paths': with Redis frozen, a request waits for its own commands, not for two
 * limit checks before them as well. Returns that connection, for the tenants' quotas.
 */
async function registerLimits(
  app: FastifyInstance,
  config: AvaConfig,
  redis: Redis,
  keys: RedisKeys,
  log: Logger,
): Promise<Redis> {
  const limits = redis.duplicate({ commandTimeout: Math.min(LIMIT_CHECK_TIMEOUT_MS, config.redis.commandTimeoutMs) });
  limits.on('error', (err) => log.warn({ err: err.message }, 'Redis connection error (API limits)'));
  // A duplicate of a lazily connected client waits to be connected; one of an eager client connects by itself.
  if (limits.status === 'wait') await limits.connect();
  app.addHook('onClose', async () => limits.disconnect());
  await app.register(authPlugin, {
    tokens: config.api.tokens,
    failures: new FailedAuthLimiter(
      limits,
      (address) => keys.rateLimit(`auth:${address}`),
      config.api.authFailuresPerMinute,
      log,
    ),
  });
  // Requests are counted per authenticated token name: authentication runs at onRequest and the limiter after it, at
  // preValidation, so a raw header as the key would not give each spelling of "Bearer" a fresh bucket.
  await app.register(rateLimit, {
    max: config.api.rateLimit,
    timeWindow: 60_000,
    // Counted in Redis, so that every API process shares one budget per caller. With Redis away the limit is not
    // enforced (requests that need Redis answer 503 on their own).
    redis: limits,
    nameSpace: keys.rateLimit(''),
    skipOnError: true,
    hook: 'preValidation',
    keyGenerator: (req) => (req.caller.name ? `token:${req.caller.name}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      new HttpError(
        429,
        'ERR_RATE_LIMIT',
        `rate limit of ${ctx.max} requests per minute exceeded; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
      ),
  });
  return limits;
}

/** The OpenAI-compatible routes (with OpenAI's error object: the plugin's own error handler applies to its routes only). */
async function registerOpenAi(
  app: FastifyInstance,
  deps: ApiDeps,
  replies: ReplyRepository,
  quotas: TenantQuotas,
): Promise<void> {
  const { config, producer, streams, log } = deps;
  const encoderFolder = await encoderDir(config);
  // The workers' encoder, in the precision they choose, so that a client's embeddings live in the same space.
  const encoder = encoderFolder
    ? new EncoderOnDemand(path.basename(path.resolve(encoderFolder)), () => openEncoder(encoderFolder, config, log))
    : undefined;
  if (encoder) app.addHook('onClose', async () => encoder.close());
  await app.register(openAiRoutes, {
    producer,
    replies,
    streams,
    quotas,
    log,
    embeddingConcurrency: config.api.embeddingConcurrency,
    replyTimeoutMs: config.stream.replyTimeoutMs,
    modelId: path.basename(config.model.id),
    ...(encoder ? { encoder } : {}),
  });
}
