import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Database } from '../../storage/database.js';
import { BadCursorError, readReplyFeed } from '../../storage/reply-feed.js';
import { presentReply } from '../../conversation/presented.js';
import { repliesQuerySchema, SECURED } from '../api-schemas.js';
import { HttpError } from '../http-error.js';

/** `GET /v1/replies`: the cursor-paginated feed of stored replies that dashboards and upstream systems read. */
export const replyRoutes: FastifyPluginAsyncZod<{ database: Database }> = async (app, { database }) => {
  app.get(
    '/v1/replies',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary:
          "The tenant's stored replies (an admin's: every tenant's, or X-AVA-Tenant's), oldest (or with order=desc newest) first, cursor-paginated: { items, next }",
        tags: ['replies'],
        querystring: repliesQuerySchema,
      },
    },
    async (req) => {
      try {
        const page = await readReplyFeed(database, {
          ...req.query,
          ...(req.everyTenant ? {} : { tenant: req.tenant }),
        });
        return { items: page.items.map(presentReply), next: page.next };
      } catch (err) {
        if (err instanceof BadCursorError) throw new HttpError(400, 'ERR_REQUEST', `query.since: ${err.message}`);
        throw err;
      }
    },
  );
};
