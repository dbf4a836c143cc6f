import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ReplyRepository } from '../../storage/reply-repository.js';
import type { SpeechRepository } from '../../storage/speech-repository.js';
import type { SpeechSynthesizer } from '../../voice/speech-synthesizer.js';
import { idParamSchema, SECURED } from '../api-schemas.js';

/** What the speech route works with. */
export interface SpeechRoutesOptions {
  replies: ReplyRepository;
  speech: SpeechRepository;
  synthesizer: SpeechSynthesizer;
}

/**
 * `GET /v1/messages/:id/audio`: a stored reply spoken, as WAV, in the reply's language (English or Mandarin).
 * Synthesised on the first fetch and cached in the database, so a second fetch costs a read.
 */
export const speechRoutes: FastifyPluginAsyncZod<SpeechRoutesOptions> = async (app, { replies, speech, synthesizer }) => {
  app.get('/v1/messages/:id/audio', {
    onRequest: app.requireScope('read'),
    schema: { ...SECURED, summary: 'A stored reply spoken, as audio/wav (espeak-ng, English or Mandarin by the reply\'s language); 404 without a stored reply, 409 for a failed one', tags: ['messages'], params: idParamSchema },
  }, async (req, reply) => {
    const { id } = req.params;
    const doc = await replies.get(id);
    if (!doc) return reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no stored reply for message ${id}` } });
    if (doc.status !== 'replied' || !doc.text?.trim()) return reply.code(409).send({ error: { code: 'ERR_NO_TEXT', message: `message ${id} has no reply text to speak (status ${doc.status})` } });
    const voice = synthesizer.voiceFor(doc.text);
    let wav = await speech.get(id, voice, doc.text);
    const cached = wav !== null;
    if (!wav) {
      wav = (await synthesizer.synthesize(doc.text)).wav;
      await speech.put(id, voice, doc.text, wav);
    }
    return reply.type('audio/wav').header('x-ava-voice', voice).header('x-ava-audio-cache', cached ? 'hit' : 'miss').header('cache-control', 'private, max-age=86400').send(wav);
  });
};
