import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import pLimit from 'p-limit';
import type { EncoderOnDemand } from '../../embedding/encoder-on-demand.js';
import { SECURED } from '../api-schemas.js';
import { HttpError } from '../http-error.js';
import { embeddingSchema } from '../openai-schemas.js';

/** What the embeddings route needs. */
export interface OpenAiEmbeddingDeps {
  /** The sentence encoder that recognition and retrieval use, loaded at the first request. */
  encoder: EncoderOnDemand;
  /** Requests encoded at once; the others wait their turn, so embeddings never take every core from the API. */
  concurrency: number;
}

/**
 * `POST /v1/embeddings` in OpenAI's shapes: the worker's sentence encoder, so a client can embed its own texts in the
 * space AVA's intents and knowledge live in. Vectors are unit length, as OpenAI's are. A text longer than the
 * encoder's window is refused, as OpenAI refuses one longer than its model's, rather than cut short in silence.
 * Registered inside the OpenAI plugin, whose error handler gives errors OpenAI's shape.
 */
export const openAiEmbeddingRoutes: FastifyPluginAsyncZod<OpenAiEmbeddingDeps> = async (
  app,
  { encoder: handle, concurrency },
) => {
  const limit = pLimit(concurrency);
  app.post(
    '/v1/embeddings',
    {
      onRequest: app.requireScope('read'),
      schema: {
        ...SECURED,
        summary: 'OpenAI-compatible embeddings from the sentence encoder (encoding_format float or base64)',
        tags: ['openai'],
        body: embeddingSchema,
      },
    },
    async (req) => {
      const body = req.body;
      if (body.model !== handle.id)
        throw new HttpError(
          404,
          'model_not_found',
          `the embedding model ${JSON.stringify(body.model)} does not exist; this server embeds with ${JSON.stringify(handle.id)}`,
          [{ path: 'model', message: 'unknown model' }],
        );
      const encoder = await handle.get();
      if (body.dimensions !== undefined && body.dimensions !== encoder.dims) {
        throw new HttpError(
          400,
          'invalid_value',
          `${handle.id} gives ${encoder.dims} dimensions and cannot shorten them`,
          [{ path: 'dimensions', message: `must be ${encoder.dims} or absent` }],
        );
      }
      const texts = typeof body.input === 'string' ? [body.input] : body.input;
      const counts = encoder.tokenCounts(texts);
      const over = counts.findIndex((n) => n > encoder.maxTokens);
      if (over >= 0) {
        const where = typeof body.input === 'string' ? 'input' : `input[${over}]`;
        throw new HttpError(
          400,
          'context_length_exceeded',
          `${where} is ${counts[over]} tokens; ${handle.id} takes at most ${encoder.maxTokens}`,
          [{ path: where, message: 'too long' }],
        );
      }
      const vectors = await limit(() => encoder.embed(texts));
      const tokens = counts.reduce((a, b) => a + b, 0);
      return {
        object: 'list',
        data: vectors.map((v, index) => ({
          object: 'embedding',
          index,
          embedding: body.encoding_format === 'base64' ? base64Of(v) : Array.from(v),
        })),
        model: handle.id,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
    },
  );
};

/** OpenAI's base64 encoding: the float32 values' little-endian bytes. */
function base64Of(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}
