import fp from 'fastify-plugin';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { BearerAuth, type ApiToken, type Scope } from './bearer-auth.js';
import type { FailedAuthLimiter } from './failed-auth-limiter.js';
import { HttpError } from './http-error.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** An `onRequest` hook that admits requests whose bearer token has `scope`, and names their caller. */
    requireScope(scope: Scope): onRequestAsyncHookHandler;
    /** Every route registered after the auth plugin, with the scope it requires or `public`, in registration order. */
    readonly routeAccess: ReadonlyArray<{ method: string; url: string; access: Scope | 'public' }>;
  }
  interface FastifyContextConfig {
    /** Served without a token (health checks, the dashboard's static files); every other route must require a scope. */
    public?: true;
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
 *
 * Deny by default: a route registered without a scope and without `config: { public: true }` stops the server from
 * starting, naming the route, so a route that forgets its auth can never be served open.
 */
export const authPlugin = fp<{ tokens: readonly ApiToken[]; failures?: FailedAuthLimiter }>(
  async (app, opts) => {
    const auth = new BearerAuth(opts.tokens);
    // The hooks requireScope made, and their scopes: how a route's access is read back when it is registered.
    const scopeOf = new WeakMap<object, Scope>();
    const routeAccess: Array<{ method: string; url: string; access: Scope | 'public' }> = [];
    app.decorateRequest('caller', '');
    app.decorate('routeAccess', routeAccess);
    app.decorate('requireScope', (scope: Scope) => {
      const hook = async (req: FastifyRequest) => {
        const wait = (await opts.failures?.blockedFor(req.ip)) ?? 0;
        if (wait > 0)
          throw new HttpError(
            429,
            'ERR_RATE_LIMIT',
            `too many failed authentications from this address; retry in ${wait} s`,
          );
        const result = auth.check(req.headers.authorization, scope);
        if (!result.ok) {
          if (result.status === 401) await opts.failures?.failed(req.ip);
          throw new HttpError(
            result.status,
            result.status === 401 ? 'ERR_UNAUTHENTICATED' : 'ERR_FORBIDDEN',
            result.message,
          );
        }
        req.caller = result.name;
      };
      scopeOf.set(hook, scope);
      return hook;
    });
    app.addHook('onRoute', (route) => {
      const scope = [route.onRequest ?? []]
        .flat()
        .map((h) => scopeOf.get(h))
        .find((x) => x !== undefined);
      const method = [route.method].flat().join(',');
      if (scope === undefined && route.config?.public !== true) {
        throw new Error(
          `route ${method} ${route.url} declares no access: give it onRequest: app.requireScope(…), or config: { public: true }`,
        );
      }
      routeAccess.push({ method, url: route.url, access: scope ?? 'public' });
    });
  },
  { name: 'ava-auth' },
);
