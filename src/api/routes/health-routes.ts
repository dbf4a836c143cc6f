import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { liveWorkers } from '../../metrics/worker-heartbeat.js';
import type { Database } from '../../storage/database.js';

/** What the health routes check. */
export interface HealthRoutesOptions {
  redis: Redis;
  database: Database;
  /** Key of the workers' heartbeats. */
  heartbeatKey: string;
}

/** `GET /healthz` (the process is up) and `GET /readyz` (it can serve); public, and never rate-limited. */
export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (app, opts) => {
  app.get(
    '/healthz',
    { config: { public: true, rateLimit: false }, schema: { summary: 'Process up (no auth)', tags: ['operations'] } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      config: { public: true, rateLimit: false },
      schema: {
        summary: 'Redis and database reachable, a live worker heartbeat with its model loaded (no auth); 503 when not',
        tags: ['operations'],
      },
    },
    async (_req, reply) => {
      const checks = await Promise.all([
        opts.redis.ping().then(
          () => true,
          () => false,
        ),
        opts.database.ping(),
        liveWorkers(opts.redis, opts.heartbeatKey).then(
          (w) => w.length > 0,
          () => false,
        ),
      ]);
      const [redis, database, workers] = checks;
      const ready = checks.every(Boolean);
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not ready', checks: { redis, database, workers } });
    },
  );
};
