import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import {
  ContractError,
  ConversationOwnerError,
  IdempotencyConflictError,
  QuotaError,
  ServiceUnavailableError,
  SpeechError,
} from '../errors/errors.js';
import { isRedisUnavailable } from '../queue/redis-connection.js';
import { isDatabaseUnavailable } from '../storage/database.js';
import type { Logger } from '../logging/logger.js';

/** A 4xx (or 5xx) answer with a stable code; the API's error handlers turn it into their error shape. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: ReadonlyArray<{ path: string; message: string }>,
    /** For a 503: how long the client should wait before it retries, sent as `Retry-After`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** How a request part is named in error paths (`query.wait`, `path.id`, `header.last-event-id`, `body.messages`). */
const PART_NAMES: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

/** A 400 naming each bad field of a request part, from a zod error. */
export function requestError(error: z.ZodError, where: string): HttpError {
  const issues = error.issues.map((i) => ({
    path: `${where}.${i.path.map(String).join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(',') : '')}`,
    message: i.code === 'unrecognized_keys' ? `unknown parameter(s): ${i.keys.join(', ')}` : i.message,
  }));
  return new HttpError(400, 'ERR_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
}

/**
 * Fastify's validator for route schemas written in zod: the parsed value replaces the raw one (coercions and
 * defaults applied), and a failure is an {@link HttpError} naming each bad field, which the error handlers render.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    const r = schema.safeParse(data ?? {});
    return r.success
      ? { value: r.data }
      : { error: requestError(r.error, PART_NAMES[httpPart ?? 'body'] ?? String(httpPart)) };
  };

/** What a 503 tells clients to wait before they retry, in seconds: about one Redis command timeout. */
export const RETRY_AFTER_SECONDS = 2;

/**
 * Which dependency an error says is away: Redis (a dropped connection, a command that timed out) or the database;
 * undefined for any other error.
 */
function unavailableDependency(err: unknown): string | undefined {
  if (err instanceof ServiceUnavailableError) return err.message;
  if (isDatabaseUnavailable(err)) return 'the database is not answering';
  if (isRedisUnavailable(err)) return 'Redis is not answering';
  return undefined;
}

/**
 * The HTTP answer of the errors that have one, for AVA's and the OpenAI-compatible routes alike (each renders it in
 * its own shape): an {@link HttpError} as it is, a contract violation 400, another user's conversation 403, a reused
 * messageId 409, a quota 429 (or 413 for a size), and
 * Redis or the database away 503 with a `Retry-After` (nothing was promised; the client retries). Undefined for any
 * other error.
 */
export function httpErrorOf(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof ContractError) return new HttpError(400, err.code, err.message, err.issues);
  if (err instanceof ConversationOwnerError) return new HttpError(403, err.code, err.message, err.issues);
  if (err instanceof IdempotencyConflictError) return new HttpError(409, err.code, err.message, err.issues);
  if (err instanceof QuotaError)
    return new HttpError(err.bound === 'size' ? 413 : 429, err.code, err.message, undefined, err.retryAfterSeconds);
  const away = unavailableDependency(err);
  if (away)
    return new HttpError(
      503,
      'ERR_SERVICE_UNAVAILABLE',
      `${away}; retry in ${RETRY_AFTER_SECONDS} s`,
      undefined,
      RETRY_AFTER_SECONDS,
    );
  return undefined;
}

/** Sends an {@link HttpError}'s status and its `Retry-After`, when it has one. */
export function withStatus(reply: FastifyReply, http: HttpError): FastifyReply {
  if (http.retryAfterSeconds) reply.header('retry-after', String(http.retryAfterSeconds));
  return reply.code(http.status);
}

/**
 * The HTTP answer of any error, for AVA's and the OpenAI-compatible routes alike (each renders it in its own shape):
 * {@link httpErrorOf}'s, speech that cannot be made now 503, Fastify's own 4xx (malformed JSON, wrong content type,
 * body too large) with their reason, and anything else 500 `ERR_INTERNAL` that says nothing about inside.
 */
export function toHttpError(err: unknown): HttpError {
  const known = httpErrorOf(err);
  if (known) return known;
  // The synthesiser is missing or failed: the reply itself is fine, its speech is not available now.
  if (err instanceof SpeechError) return new HttpError(503, err.code, err.message);
  const { statusCode, code, message } = err as Partial<FastifyError>;
  if (statusCode && statusCode >= 400 && statusCode < 500)
    return new HttpError(statusCode, code ?? 'ERR_REQUEST', message ?? 'bad request');
  return new HttpError(500, 'ERR_INTERNAL', 'internal error');
}

/**
 * Logs a request's failure by what it says: a 5xx other than 503 is a fault of ours (error), a 503 a dependency
 * away (warn), a 4xx the client's (not logged).
 */
export function logHttpFailure(log: Logger, err: unknown, http: HttpError, what: string): void {
  if (http.status === 503) log.warn({ err }, `${what}: a dependency is unavailable; answered 503`);
  else if (http.status >= 500) log.error({ err }, `${what} failed`);
}

/** The API's error handler: AVA's error shape `{ error: { code, message, issues? } }` with the right status. */
export function avaErrorHandler(log: Logger) {
  return (err: FastifyError | Error, _req: FastifyRequest, reply: FastifyReply) => {
    const http = toHttpError(err);
    logHttpFailure(log, err, http, 'request');
    return withStatus(reply, http).send({
      error: { code: http.code, message: http.message, ...(http.issues ? { issues: http.issues } : {}) },
    });
  };
}

/**
 * The HTTP answer of a stored `failed` reply, the same on every route that waits for one (`/generate`, the OpenAI
 * routes): 422 when the message itself could not be processed (its content, its audio, its ids), 500 when AVA failed
 * it (generation, a handler, retries or workers exhausted), with the reply's code and message.
 */
export function failedReplyError(error: { code: string; message: string } | undefined): HttpError {
  const code = error?.code ?? 'ERR_INTERNAL';
  const theMessages = code === 'ERR_CONTRACT' || code === 'ERR_JOB_ID' || code.startsWith('ERR_AUDIO_');
  return new HttpError(theMessages ? 422 : 500, code, error?.message ?? 'the message failed');
}
