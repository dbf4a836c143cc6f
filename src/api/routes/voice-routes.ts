import multipart from '@fastify/multipart';
import type { FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CONTRACT_VERSION, messageSchema, type MessageInput } from '../../contract/message-contract.js';
import { createHash } from 'node:crypto';
import { AudioError } from '../../errors/errors.js';
import type { TenantQuotas } from '../tenant-quotas.js';
import type { MessageProducer } from '../../queue/message-producer.js';
import type { UploadRepository } from '../../storage/upload-repository.js';
import { sniffAudio } from '../../voice/audio-format.js';
import { SECURED } from '../api-schemas.js';
import { HttpError, requestError } from '../http-error.js';

/** What the voice route works with. */
export interface VoiceRoutesOptions {
  producer: MessageProducer;
  quotas: TenantQuotas;
  uploads: UploadRepository;
  /** Largest upload, in bytes (AVA_AUDIO_MAX_BYTES). */
  maxBytes: number;
  /** Longest audio, in seconds (AVA_AUDIO_MAX_SECONDS); checked here for WAV, by the worker for the rest. */
  maxSeconds: number;
}

const ids = messageSchema.shape;
/** The form fields of a voice message (multipart), or the JSON body's fields beside `audio`. */
const voiceFieldsSchema = z.strictObject({
  messageId: ids.messageId,
  conversationId: ids.conversationId,
  userId: ids.userId,
  language: z
    .string()
    .regex(/^[a-z]{2,3}$/, 'must be an ISO 639 code such as en')
    .optional(),
  speech: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
});
/** The JSON form: the fields and the audio file's bytes in base64. */
const voiceJsonSchema = voiceFieldsSchema.extend({ audio: z.base64("audio must be the file's bytes in base64") });

/** The HTTP status of each audio problem the API finds itself. */
const AUDIO_STATUS: Partial<Record<AudioError['code'], number>> = { ERR_AUDIO_FORMAT: 415, ERR_AUDIO_TOO_LARGE: 413 };

/**
 * `POST /v1/messages/audio`: a voice message, as `multipart/form-data` (fields, and the file in part `audio`) or as
 * JSON with the file in base64. The upload is checked by its bytes (415 for what is not audio or claims WAV falsely,
 * 413 past AVA_AUDIO_MAX_BYTES, 400 for a truncated WAV, a nonsense sample rate or a WAV past AVA_AUDIO_MAX_SECONDS),
 * stored in GridFS, and its message enqueued referring to it. A worker transcribes it; the transcript and the reply
 * are read like any message's (`GET /v1/messages/:id`).
 */
export const voiceRoutes: FastifyPluginAsyncZod<VoiceRoutesOptions> = async (app, opts) => {
  const { producer, quotas, uploads, maxBytes, maxSeconds } = opts;
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 1024, parts: 11 } });

  // Multipart bodies are read by the handler (streamed, with their own limits); JSON bodies are checked by the schema.
  const validatorCompiler: FastifySchemaCompiler<unknown> =
    ({ schema }) =>
    (data) => {
      if (data === undefined || data === null) return { value: data };
      const r = (schema as z.ZodType).safeParse(data);
      return r.success ? { value: r.data } : { error: requestError(r.error, 'body') };
    };

  app.post(
    '/v1/messages/audio',
    {
      onRequest: app.requireScope('enqueue'),
      // Base64 is 4/3 of the bytes, plus the fields.
      bodyLimit: Math.ceil((maxBytes * 4) / 3) + 16_384,
      validatorCompiler,
      schema: {
        ...SECURED,
        summary: `Enqueue a voice message (multipart/form-data with part \`audio\`, or JSON with \`audio\` in base64): WAV, Ogg/Opus, WebM, MP3, FLAC or MP4, at most ${maxBytes} bytes and ${maxSeconds} s; 202 when queued`,
        tags: ['messages'],
        consumes: ['multipart/form-data', 'application/json'],
        body: voiceJsonSchema,
      },
    },
    async (req, reply) => {
      if (!req.isMultipart() && (req.body === null || req.body === undefined))
        throw new HttpError(400, 'ERR_REQUEST', 'body: send multipart/form-data with part "audio", or a JSON object');
      const { fields, bytes } = req.isMultipart()
        ? await readForm(req, maxBytes)
        : {
            fields: req.body as z.output<typeof voiceJsonSchema>,
            bytes: Buffer.from((req.body as { audio: string }).audio, 'base64'),
          };
      const contentType = checkedAudio(bytes, maxBytes, maxSeconds);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const message = (fileId: string): MessageInput => ({
        v: CONTRACT_VERSION,
        tenant: req.tenant,
        messageId: fields.messageId,
        conversationId: fields.conversationId,
        userId: fields.userId,
        audio: { fileId, ...(fields.language ? { language: fields.language } : {}), sha256 },
        ...(fields.speech !== undefined ? { speech: fields.speech } : {}),
      });
      // Everything is checked before the upload is stored: the quotas, and whether the message is new. A repeated
      // upload of a message already accepted (the same file and fields) changes nothing, like a repeated enqueue.
      await quotas.take(req.tenant, 1, bytes.length);
      const { fileId, ...queued } = await producer.enqueueWithUpload(message, {
        store: (key, tenant) => uploads.put(bytes, { contentType, messageId: key, tenant }),
        discard: (id) => uploads.delete(id),
      });
      return reply.code(202).send(fileId ? { ...queued, audio: { fileId, contentType, bytes: bytes.length } } : queued);
    },
  );
};

/** The content type of an upload, sniffed from its bytes, after its size and (for WAV) its length are checked. */
function checkedAudio(bytes: Buffer, maxBytes: number, maxSeconds: number): string {
  if (bytes.length > maxBytes)
    throw new HttpError(
      413,
      'ERR_AUDIO_TOO_LARGE',
      `the audio is ${bytes.length} bytes; at most ${maxBytes} are accepted`,
    );
  try {
    const sniff = sniffAudio(bytes);
    if (sniff.seconds !== undefined && sniff.seconds > maxSeconds)
      throw new AudioError(
        'ERR_AUDIO_TOO_LONG',
        `the audio lasts ${Math.round(sniff.seconds)} s; at most ${maxSeconds} s is accepted`,
      );
    return sniff.contentType;
  } catch (err) {
    if (err instanceof AudioError) throw new HttpError(AUDIO_STATUS[err.code] ?? 400, err.code, err.message);
    throw err;
  }
}

/** Reads a multipart voice message: its fields and its one file, refusing a file past `maxBytes` with 413. */
async function readForm(
  req: FastifyRequest,
  maxBytes: number,
): Promise<{ fields: z.output<typeof voiceFieldsSchema>; bytes: Buffer }> {
  const raw: Record<string, string> = {};
  let bytes: Buffer | undefined;
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'audio')
        throw new HttpError(
          400,
          'ERR_REQUEST',
          `body.${part.fieldname}: unknown file part; send the audio in part "audio"`,
        );
      try {
        bytes = await part.toBuffer();
      } catch (err) {
        if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE')
          throw new HttpError(413, 'ERR_AUDIO_TOO_LARGE', `the audio is larger than ${maxBytes} bytes`);
        throw err;
      }
    } else raw[part.fieldname] = String(part.value);
  }
  if (!bytes) throw new HttpError(400, 'ERR_REQUEST', 'body.audio: required: a file part named "audio"');
  const r = voiceFieldsSchema.safeParse(raw);
  if (!r.success) throw requestError(r.error, 'body');
  return { fields: r.data, bytes };
}
