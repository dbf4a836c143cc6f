import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { ApiMetrics } from '../../metrics/api-metrics.js';
import { collectStats } from '../../metrics/service-stats.js';
import type { QueueView } from '../../queue/queue-view.js';
import type { RedisKeys } from '../../queue/redis-keys.js';
import { SECURED } from '../api-schemas.js';

/** What the metrics routes read. */
export interface MetricsRoutesOptions {
  queue: QueueView;
  redis: Redis;
  keys: RedisKeys;
}

/**
 * `GET /metrics` (Prometheus) and `GET /v1/stats` (the dashboard's and `ava stats`'s summary): the whole service,
 * every tenant's traffic, so the `admin` scope.
 */
export const metricsRoutes: FastifyPluginAsyncZod<MetricsRoutesOptions> = async (app, opts) => {
  const metrics = new ApiMetrics(opts.queue, opts.redis, opts.keys.workers);
  app.get(
    '/metrics',
    {
      onRequest: app.requireScope('admin'),
      schema: {
        ...SECURED,
        summary: 'Prometheus metrics: queue, live workers and their aggregated metrics',
        tags: ['operations'],
      },
    },
    async (_req, reply) => {
      const { contentType, body } = await metrics.render();
      return reply.type(contentType).send(body);
    },
  );
  app.get(
    '/v1/stats',
    {
      onRequest: app.requireScope('admin'),
      schema: {
        ...SECURED,
        summary: 'Queue depth, live workers, reply counts and recent latency, for dashboards',
        tags: ['operations'],
      },
    },
    async () => collectStats(opts.queue, opts.redis, opts.keys),
  );
};
