import Fastify, { type FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authPlugin } from '../../src/api/auth-plugin.js';
import { startApiWorld } from '../helpers/api-world.js';

/** What may be served without a token: health checks and the dashboard's and voice page's static files. */
const PUBLIC = [
  '/healthz',
  '/readyz',
  '/',
  '/dashboard.js',
  '/voice',
  '/voice.js',
  '/assets/uplot.iife.min.js',
  '/assets/uplot.min.css',
];

describe('deny by default', () => {
  it('refuses to start a server with a route that declares no access, naming it', async () => {
    const app = Fastify();
    await app.register(authPlugin, { tokens: [] });
    const forgetful: FastifyPluginAsync = async (child) => {
      child.get('/open', async () => 'anyone');
    };
    await expect(app.register(forgetful)).rejects.toThrow('route GET /open declares no access');
    await app.close().catch(() => undefined);
    const ok = Fastify();
    await ok.register(authPlugin, { tokens: [] });
    ok.get('/scoped', { onRequest: ok.requireScope('read') }, async () => 'token holders');
    ok.get('/health', { config: { public: true } }, async () => 'anyone');
    await ok.ready();
    expect(ok.routeAccess.map((r) => [r.url, r.access])).toEqual(
      expect.arrayContaining([
        ['/scoped', 'read'],
        ['/health', 'public'],
      ]),
    );
    expect((await ok.inject({ url: '/scoped' })).statusCode).toBe(401);
    expect((await ok.inject({ url: '/health' })).statusCode).toBe(200);
    await ok.close();
  });
});

const READER = 'reader-token-0123456789abcdef';
const WRITER = 'writer-token-0123456789abcdef';

describe('every route of the API', () => {
  let world: Awaited<ReturnType<typeof startApiWorld>>;
  beforeAll(async () => {
    world = await startApiWorld('auth', {
      AVA_API_TOKENS: `reader:${READER}:read:default,writer:${WRITER}:enqueue:default`,
      // Every route is refused several times over from one address; the failed-authentication limit is not under test.
      AVA_API_AUTH_FAILURES_PER_MINUTE: '100000',
    });
  }, 120_000);
  afterAll(async () => world?.close());

  it('is public only if it is a health check or a static page; every other route refuses no token and a wrong token (401) and a token without its scope (403)', async () => {
    const routes = world.api.routeAccess;
    expect(routes.length).toBeGreaterThan(20);
    expect([...new Set(routes.filter((r) => r.access === 'public').map((r) => r.url))].sort()).toEqual(
      [...PUBLIC].sort(),
    );
    for (const r of routes.filter((x) => x.access !== 'public')) {
      for (const method of r.method.split(',')) {
        const url = r.url.replace(/:(\w+)/g, 'x1');
        const call = (token?: string) =>
          world.api.inject({
            method: method as 'GET',
            url,
            ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
            ...(method === 'POST' ? { payload: {} } : {}),
          });
        expect((await call()).statusCode, `${method} ${url} without a token`).toBe(401);
        expect((await call('not-a-token-of-this-server')).statusCode, `${method} ${url} with a wrong token`).toBe(401);
        const other = r.access === 'read' ? WRITER : READER;
        expect((await call(other)).statusCode, `${method} ${url} without scope ${r.access}`).toBe(403);
      }
    }
  });
});
