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
    AVA_API_TOKENS: `crm:${TOKEN}:enqueue+read,dash:${OTHER}:read`,
    AVA_API_RATE_LIMIT: '10',
    AVA_API_AUTH_FAILURES_PER_MINUTE: '5',
  });
  replica = await buildApiServer({
    config: world.config,
    producer: world.producer,
    database: world.database,
    redis: world.redis,
    streams: world.streams,
    log: silentLog,
  });
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

it('limits failed authentications per client address, over every API process, before the token is checked', async () => {
  const from = (app: FastifyInstance, remoteAddress: string, token: string) =>
    app.inject({ url: '/v1/messages/x', headers: { authorization: `Bearer ${token}` }, remoteAddress });
  for (let i = 0; i < 5; i++)
    expect((await from(i % 2 ? world.api : replica, '127.0.0.4', `wrong-token-${i}-0123456789`)).statusCode).toBe(401);
  // The address is now refused, even with the right token and on either process.
  for (const app of [world.api, replica]) {
    const res = await from(app, '127.0.0.4', OTHER);
    expect(res.statusCode).toBe(429);
    expect(res.json().error).toMatchObject({
      code: 'ERR_RATE_LIMIT',
      message: expect.stringMatching(/failed authentications from this address; retry in \d+ s/),
    });
  }
  // Another address is not.
  expect((await from(world.api, '127.0.0.5', OTHER)).statusCode).toBe(404);
});
