import type { FastifyRequest } from 'fastify';
import { scopedKey } from '../contract/scoped-key.js';
import { HttpError } from './http-error.js';

/**
 * The key of an id the request names (a messageId or conversationId), in the request's tenant: every read and write
 * of the API goes through it, so a tenant only ever reaches its own keys, and another tenant's id is simply unknown.
 */
export function keyOf(req: FastifyRequest, id: string): string {
  return scopedKey(req.tenant, id);
}

/**
 * A message a request sends, as its tenant's: a `tenant` field may only name the request's own tenant (the caller's,
 * or for an admin the one it named); an absent one is filled in.
 */
export function asTenant(req: FastifyRequest, input: unknown, path: string): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const named = (input as { tenant?: unknown }).tenant;
  if (named !== undefined && named !== req.tenant)
    throw new HttpError(403, 'ERR_FORBIDDEN', `${path}tenant: a token sends messages of its own tenant only`, [
      { path: `${path}tenant`, message: 'must be the tenant of the token (or left out)' },
    ]);
  return { ...input, tenant: req.tenant };
}
