import fp from 'fastify-plugin';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { BearerAuth, type ApiToken, type Scope } from './bearer-auth.js';
import type { FailedAuthLimiter } from './failed-auth-limiter.js';
import { HttpError } from './http-error.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** An `onRequest` hook that admits requests whose bearer token has `scope`, and names their caller. */
    requireScope(scope: Scope): onRequestAsyncHookHandler;
  }
  interface FastifyRequest {
    /** Name of the token that authenticated the request; empty on public routes. */
    caller: string;
  }
}

/**
 * Bearer-token authentication for every plugin of the API: routes declare `onRequest: app.requireScope(…)`. It runs
 * first, before the body is read or validated, so an unauthenticated request learns nothing about its input. With a
 * `failures` limiter, an address that failed to authenticate too often is answered 429 before its token is checked.
 */
export const authPlugin = fp<{ tokens: readonly ApiToken[]; failures?: FailedAuthLimiter }>(
  async (app, opts) => {
    const auth = new BearerAuth(opts.tokens);
    app.decorateRequest('caller', '');
    app.decorate('requireScope', (scope: Scope) => async (req: FastifyRequest) => {
      const wait = (await opts.failures?.blockedFor(req.ip)) ?? 0;
      if (wait > 0) throw new HttpError(429, 'ERR_RATE_LIMIT', `too many failed authentications from this address; retry in ${wait} s`);
      const result = auth.check(req.headers.authorization, scope);
      if (!result.ok) {
        if (result.status === 401) await opts.failures?.failed(req.ip);
        throw new HttpError(result.status, result.status === 401 ? 'ERR_UNAUTHENTICATED' : 'ERR_FORBIDDEN', result.message);
      }
      req.caller = result.name;
    });
  },
  { name: 'ava-auth' },
);
