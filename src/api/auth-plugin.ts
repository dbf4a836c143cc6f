import fp from 'fastify-plugin';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { TENANT_PATTERN } from '../contract/scoped-key.js';
import { BearerAuth, type ApiToken, type Caller, type Scope } from './bearer-auth.js';
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
    /** Who sent the request: its token's name and tenant; the empty caller on public routes. */
    caller: Caller;
    /** The tenant whose data the request reads and writes: the caller's, or for an admin the one `X-AVA-Tenant` names. */
    tenant: string;
    /** An admin that named no tenant: a route that lists (the reply feed) lists every tenant's. */
    everyTenant: boolean;
  }
}

/** The header an admin names the tenant it reads with. */
const TENANT_HEADER = 'x-ava-tenant';
const NOBODY: Caller = Object.freeze({ name: '', tenant: '', admin: false });

/**
 * Bearer-token authentication for every plugin of the API: routes declare `onRequest: app.requireScope(…)`. It runs
 * first, before the body is read or validated, so an unauthenticated request learns nothing about its input.
 *
 * A valid token is always admitted, whoever failed before it. With a `failures` limiter, an address (the client's,
 * through `trustProxy`) that sent too many wrong tokens gets 429 instead of 401 for the next wrong ones.
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
    // A reference type cannot be a decorator's default: every request starts as nobody, public routes stay so.
    app.decorateRequest('caller', null as unknown as Caller);
    app.addHook('onRequest', async (req) => {
      req.caller = NOBODY;
    });
    app.decorateRequest('tenant', '');
    app.decorateRequest('everyTenant', false);
    app.decorate('routeAccess', routeAccess);
    app.decorate('requireScope', (scope: Scope) => {
      const hook = async (req: FastifyRequest) => {
        const result = auth.check(req.headers.authorization, scope);
        if (result.ok) {
          req.caller = result.caller;
          const named = namedTenant(req, result.caller);
          req.tenant = named ?? result.caller.tenant;
          req.everyTenant = result.caller.admin && named === undefined;
          return;
        }
        if (result.status === 403) throw new HttpError(403, 'ERR_FORBIDDEN', result.message);
        const wait = (await opts.failures?.blockedFor(req.ip)) ?? 0;
        if (wait > 0)
          throw new HttpError(
            429,
            'ERR_RATE_LIMIT',
            `too many failed authentications from this address; retry in ${wait} s`,
          );
        await opts.failures?.failed(req.ip);
        throw new HttpError(401, 'ERR_UNAUTHENTICATED', result.message);
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

/** The tenant a request names with `X-AVA-Tenant`: any, for an admin; its own, for anyone else. */
function namedTenant(req: FastifyRequest, caller: Caller): string | undefined {
  const named = req.headers[TENANT_HEADER];
  if (named === undefined) return undefined;
  if (typeof named !== 'string' || !TENANT_PATTERN.test(named))
    throw new HttpError(400, 'ERR_REQUEST', `headers.${TENANT_HEADER}: must be one tenant's name`);
  if (!caller.admin && named !== caller.tenant)
    throw new HttpError(403, 'ERR_FORBIDDEN', `token "${caller.name}" acts for its own tenant only`);
  return named;
}
