import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { DialogueState } from '../../conversation/dialogue-state.js';
import { presentConversation } from '../../conversation/presented.js';
import { idParamSchema, SECURED } from '../api-schemas.js';
import { keyOf } from '../request-tenant.js';
import { HttpError } from '../http-error.js';

/** `GET /v1/conversations/:id`: a conversation with its recent turns and the status of its messages. */
export const conversationRoutes: FastifyPluginAsyncZod<{ dialogue: DialogueState }> = async (app, { dialogue }) => {
  app.get(
    '/v1/conversations/:id',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary: 'A conversation with its recent turns; 404 when unknown',
        tags: ['conversations'],
        params: idParamSchema,
      },
    },
    async (req) => {
      const view = await dialogue.conversation(keyOf(req, req.params.id));
      if (!view) throw new HttpError(404, 'ERR_NOT_FOUND', `no conversation ${req.params.id}`);
      return presentConversation(view);
    },
  );
};
