import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ReplyRepository } from '../../storage/reply-repository.js';
import type { SpeechCache } from '../../voice/speech-cache.js';
import { idParamSchema, SECURED } from '../api-schemas.js';
import { keyOf } from '../request-tenant.js';
import { HttpError } from '../http-error.js';

/** What the speech route works with. */
export interface SpeechRoutesOptions {
  replies: ReplyRepository;
  speech: SpeechCache;
}

const CONTENT_TYPES = { wav: 'audio/wav', ogg: 'audio/ogg; codecs=opus' } as const;
const audioQuery = z.strictObject({ format: z.enum(['wav', 'ogg']).default('wav') });

/**
 * `GET /v1/messages/:id/audio?format=wav|ogg`: a stored reply spoken in its language (English or Mandarin), as WAV
 * or Ogg/Opus. Synthesised (and encoded) on the first fetch and cached in the database, so a second fetch costs a
 * read.
 */
export const speechRoutes: FastifyPluginAsyncZod<SpeechRoutesOptions> = async (app, { replies, speech }) => {
  app.get(
    '/v1/messages/:id/audio',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary:
          "A stored reply spoken (espeak-ng, English or Mandarin by the reply's language), as audio/wav or Ogg/Opus; 404 without a stored reply, 409 for a failed one",
        tags: ['messages'],
        params: idParamSchema,
        querystring: audioQuery,
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const key = keyOf(req, id);
      const doc = await replies.get(key);
      if (!doc) throw new HttpError(404, 'ERR_NOT_FOUND', `no stored reply for message ${id}`);
      if (doc.status !== 'replied' || !doc.text.trim())
        throw new HttpError(409, 'ERR_NO_TEXT', `message ${id} has no reply text to speak (status ${doc.status})`);
      const { format } = req.query;
      const { audio, voice, cached } = await speech.get(key, doc.text, format);
      return reply
        .type(CONTENT_TYPES[format])
        .header('x-ava-voice', voice)
        .header('x-ava-audio-cache', cached ? 'hit' : 'miss')
        .header('cache-control', 'private, max-age=86400')
        .send(audio);
    },
  );
};
