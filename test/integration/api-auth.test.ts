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

describe('every route of the API', () => {
  let world: Awaited<ReturnType<typeof startApiWorld>>;
  beforeAll(async () => {
    world = await startApiWorld('auth', { AVA_API_TOKENS: 'app:auth-token-0123456789abcdef:enqueue+read' });
  }, 120_000);
  afterAll(async () => world?.close());

  it('is public only if it is a health check or a static page, and answers every other request without a token 401', async () => {
    const routes = world.api.routeAccess;
    expect(routes.length).toBeGreaterThan(20);
    expect([...new Set(routes.filter((r) => r.access === 'public').map((r) => r.url))].sort()).toEqual(
      [...PUBLIC].sort(),
    );
    for (const r of routes.filter((x) => x.access !== 'public')) {
      for (const method of r.method.split(',')) {
        const url = r.url.replace(/:(\w+)/g, 'x1');
        const res = await world.api.inject({
          method: method as 'GET',
          url,
          ...(method === 'POST' ? { payload: {} } : {}),
        });
        expect(res.statusCode, `${method} ${url}`).toBe(401);
      }
    }
  });
});
