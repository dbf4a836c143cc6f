import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiServer } from '../../src/api/api-server.js';
import { startApiWorld } from '../helpers/api-world.js';
import { silentLog } from '../helpers/services.js';

const TOKEN = 'limits-token-0123456789abcdef';
/** A second caller of its own, whose rate budget the first test does not spend. */
const OTHER = 'limits-other-0123456789abcdef';
let world: Awaited<ReturnType<typeof startApiWorld>>;
/** A second API process on the same Redis, as a second replica behind a load balancer. */
let replica: FastifyInstance;

beforeAll(async () => {
  world = await startApiWorld('limits', {
    AVA_API_TOKENS: `crm:${TOKEN}:enqueue+read:default,dash:${OTHER}:read:default`,
    AVA_API_RATE_LIMIT: '10',
    AVA_API_AUTH_FAILURES_PER_MINUTE: '5',
  });
  replica = await buildApiServer(replicaDeps());
}, 120_000);
afterAll(async () => {
  await replica?.close();
  await world?.close();
});

it('shares one rate limit per token between API processes, in Redis', async () => {
  const get = (app: FastifyInstance) =>
    app.inject({ url: '/v1/replies', headers: { authorization: `Bearer ${TOKEN}` }, remoteAddress: '127.0.0.3' });
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await get(world.api)).statusCode, (await get(replica)).statusCode);
  expect(statuses.filter((s) => s === 200)).toHaveLength(10);
  expect(statuses.slice(10)).toEqual([429, 429]);
});

it('limits failed authentications per client address, over every API process, and never refuses a valid token', async () => {
  const from = (app: FastifyInstance, remoteAddress: string, token: string) =>
    app.inject({ url: '/v1/messages/x', headers: { authorization: `Bearer ${token}` }, remoteAddress });
  for (let i = 0; i < 5; i++)
    expect((await from(i % 2 ? world.api : replica, '127.0.0.4', `wrong-token-${i}-0123456789`)).statusCode).toBe(401);
  for (const app of [world.api, replica]) {
    // The address's next wrong tokens are refused before they are counted, on either process…
    const res = await from(app, '127.0.0.4', 'wrong-token-again-0123456789');
    expect(res.statusCode).toBe(429);
    expect(res.json().error).toMatchObject({
      code: 'ERR_RATE_LIMIT',
      message: expect.stringMatching(/failed authentications from this address; retry in \d+ s/),
    });
    // …but a valid token from the same address (everyone behind one NAT) is served.
    expect((await from(app, '127.0.0.4', OTHER)).statusCode).toBe(404);
  }
  expect((await from(world.api, '127.0.0.5', 'wrong-token-elsewhere-0123456789')).statusCode).toBe(401);
});

it('counts failures by the client address behind a trusted proxy, not by the proxy', async () => {
  const proxied = await buildApiServer({
    ...replicaDeps(),
    config: { ...world.config, api: { ...world.config.api, trustProxy: '127.0.0.9' } },
  });
  try {
    const via = (client: string, token: string) =>
      proxied.inject({
        url: '/v1/messages/x',
        headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': client },
        remoteAddress: '127.0.0.9',
      });
    for (let i = 0; i < 6; i++) await via('203.0.113.7', `wrong-token-${i}-0123456789`);
    expect((await via('203.0.113.7', 'wrong-token-last-0123456789')).statusCode).toBe(429);
    // Another client of the same proxy is not held to the first one's failures.
    expect((await via('203.0.113.8', 'wrong-token-other-0123456789')).statusCode).toBe(401);
    // An address that is not the trusted proxy cannot choose its address by a header.
    const spoofed = await proxied.inject({
      url: '/v1/messages/x',
      headers: { authorization: 'Bearer wrong-token-spoof-0123456789', 'x-forwarded-for': '203.0.113.99' },
      remoteAddress: '127.0.0.4',
    });
    expect(spoofed.statusCode).toBe(429);
  } finally {
    await proxied.close();
  }
});

function replicaDeps() {
  return {
    config: world.config,
    keys: world.keys,
    producer: world.producer,
    database: world.database,
    redis: world.redis,
    streams: world.streams,
    log: silentLog,
  };
}
