import { z } from 'zod';
import { ContractError } from '../errors/errors.js';
import { DEFAULT_TENANT, ID_PATTERN, TENANT_PATTERN } from './scoped-key.js';

/** Current message contract version; the `v` field of every job. */
export const CONTRACT_VERSION = 1;
/** BullMQ job name of a message. */
export const MESSAGE_JOB_NAME = 'message';
/** Longest message text, in characters after trimming. */
export const MAX_TEXT_CHARS = 8000;
/** Most metadata keys per message. */
export const MAX_METADATA_KEYS = 32;
/** Most turns of history a message may carry. */
export const MAX_HISTORY_TURNS = 50;
/** Most tokens a message may ask to be generated. */
export const MAX_NEW_TOKENS = 512;

/** Who answers a message: see the contract's `mode`. */
export const MESSAGE_MODES = ['assistant', 'dialogue', 'text'] as const;
/** Who answers a message. */
export type MessageMode = (typeof MESSAGE_MODES)[number];

export { ID_PATTERN } from './scoped-key.js';
/**
 * C0 controls other than tab, line feed and carriage return, plus DEL. NUL is refused by FerretDB and by many
 * downstream systems; the others have no place in a chat message, a reply or a knowledge entry.
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const id = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(ID_PATTERN, `${what} must be 1-128 characters of A-Z a-z 0-9 _ . : -`);

const safeString = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)')
    .refine((s) => !CONTROL_CHARACTERS.test(s), 'must not contain NUL or control characters');

const metadataKey = z
  .string()
  .min(1, 'metadata keys must not be empty')
  .max(64, 'metadata keys must be at most 64 characters')
  .refine((k) => !k.startsWith('$') && !k.includes('.'), 'metadata keys must not start with $ or contain .')
  .refine((k) => !RESERVED_KEYS.has(k), 'metadata keys must not be __proto__, constructor or prototype')
  .refine((k) => !CONTROL_CHARACTERS.test(k) && k.isWellFormed(), 'metadata keys must not contain control characters');

const metadataValue = z.union([safeString(1024), z.number().finite(), z.boolean()], {
  error: 'metadata values must be strings (at most 1024 characters), finite numbers or booleans',
});

/**
 * Schema of a message job, version 1. The same schema validates at the producer (before enqueueing) and at the
 * worker (after dequeueing), so a message that passes one end passes the other.
 */
export const messageSchema = z
  .strictObject({
    v: z.literal(CONTRACT_VERSION, { error: `v must be ${CONTRACT_VERSION} (the contract version)` }),
    /**
     * Whose message it is: the API sets it from the caller's token, a library or CLI producer from its own setting.
     * messageId and conversationId are the tenant's own: the same id in two tenants is two messages.
     */
    tenant: z
      .string({ error: 'tenant must be a string' })
      .regex(TENANT_PATTERN, 'tenant must be 1-64 characters of A-Z a-z 0-9 _ -')
      .default(DEFAULT_TENANT),
    messageId: id('messageId'),
    conversationId: id('conversationId'),
    userId: id('userId'),
    /** What the user wrote; a voice message has `audio` instead. */
    text: safeString(1_000_000)
      .transform((s) => s.trim())
      .pipe(
        z
          .string()
          .min(1, 'text must not be empty or only whitespace')
          .max(MAX_TEXT_CHARS, `text must be at most ${MAX_TEXT_CHARS} characters after trimming`),
      )
      .optional(),
    /**
     * What the user said, stored beforehand (the API's `POST /v1/messages/audio` or the CLI's `--audio` store it in
     * GridFS bucket `uploads`): a worker transcribes it, and the transcript is the message's text from then on.
     */
    audio: z
      .strictObject({
        fileId: z
          .string({ error: 'audio.fileId must be a string' })
          .regex(/^[0-9a-f]{24}$/, 'audio.fileId must be the 24 hex digits of a stored upload'),
        /** The language spoken; absent: a recogniser that detects languages (Whisper) chooses, any other hears English. */
        language: z
          .string()
          .regex(/^[a-z]{2,3}$/, 'audio.language must be an ISO 639 code such as en')
          .optional(),
        /** The SHA-256 of the audio's bytes (hex), which makes a retried upload of one file the same message. */
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, 'audio.sha256 must be 64 hex digits')
          .optional(),
      })
      .optional(),
    createdAt: z.iso.datetime({ offset: true, error: 'createdAt must be an ISO-8601 date-time' }).optional(),
    metadata: z
      .record(metadataKey, metadataValue)
      .refine((m) => Object.keys(m).length <= MAX_METADATA_KEYS, `metadata must have at most ${MAX_METADATA_KEYS} keys`)
      .optional(),
    /** How the reply is generated when the model answers; absent fields take the worker's defaults. */
    generation: z
      .strictObject({
        maxNewTokens: z.number().int().min(1).max(MAX_NEW_TOKENS, `must be at most ${MAX_NEW_TOKENS}`).optional(),
        temperature: z.number().min(0).max(2).optional(),
        topP: z.number().gt(0).max(1).optional(),
        stop: z
          .array(safeString(64).pipe(z.string().min(1, 'stop strings must not be empty')))
          .max(4, 'at most 4 stop strings')
          .optional(),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1)
          .optional(),
      })
      .optional(),
    /**
     * The dialogue so far, oldest first, when the producer keeps it (an OpenAI-style client sends it with every
     * request): it replaces the history AVA keeps for the conversation in the prompt.
     */
    history: z
      .array(z.strictObject({ user: safeString(MAX_TEXT_CHARS), assistant: safeString(MAX_TEXT_CHARS) }))
      .max(MAX_HISTORY_TURNS, `history must have at most ${MAX_HISTORY_TURNS} turns`)
      .optional(),
    /**
     * Instructions for the model (an OpenAI-style client's system messages), placed before the dialogue in its prompt;
     * kept after the new message and before passages and turns when the window is short.
     */
    instructions: safeString(MAX_TEXT_CHARS).optional(),
    /**
     * Who answers: `assistant` (the default) recognises the intent and answers from templates, the dialogue state,
     * handlers, knowledge or the model; `dialogue` goes to the model alone, with the dialogue prompt and no intents;
     * `text` goes to the model alone with the text as the whole prompt, for plain completion.
     */
    mode: z.enum(MESSAGE_MODES, { error: `mode must be one of ${MESSAGE_MODES.join(', ')}` }).optional(),
    /** True asks for a spoken reply too: the worker speaks the reply once it is stored (`GET /v1/messages/:id/audio`). */
    speech: z.boolean({ error: 'speech must be true or false' }).optional(),
  })
  .superRefine((m, ctx) => {
    if ((m.text === undefined) === (m.audio === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [m.text === undefined ? 'text' : 'audio'],
        message:
          m.text === undefined ? 'text is required (or audio, for a voice message)' : 'give text or audio, not both',
      });
    }
  });

/** A message that passed the contract (text trimmed): written, or spoken (`audio`) and not yet transcribed. */
export type InboundMessage = z.output<typeof messageSchema>;
/** A message with its text: as written, or the transcript of a voice message. */
export type Message = InboundMessage & { text: string };
/** A voice message before transcription. */
export type VoiceMessage = InboundMessage & { audio: NonNullable<InboundMessage['audio']> };
/** What a producer hands in (text may have surrounding whitespace). */
export type MessageInput = z.input<typeof messageSchema>;

/**
 * Validates unknown data against the contract. Throws a {@link ContractError} listing every bad field and its
 * reason; never returns partially valid data.
 */
export function parseMessage(data: unknown): InboundMessage {
  if (isPlainObject(data) && isPlainObject(data.metadata)) {
    const keys = Object.keys(data.metadata);
    // Counting keys first keeps a hostile 10,000-key metadata object from being walked key by key.
    if (keys.length > MAX_METADATA_KEYS) {
      throw new ContractError([{ path: 'metadata', message: `must have at most ${MAX_METADATA_KEYS} keys` }]);
    }
    // zod drops a `__proto__` own key silently; refuse it loudly instead.
    const reserved = keys.find((k) => RESERVED_KEYS.has(k));
    if (reserved)
      throw new ContractError([
        { path: `metadata.${reserved}`, message: 'metadata keys must not be __proto__, constructor or prototype' },
      ]);
  }
  const result = messageSchema.safeParse(data);
  if (result.success) return result.data;
  throw new ContractError(
    result.error.issues.map((i) => ({
      path: i.path.map(String).join('.') || '(root)',
      message:
        i.code === 'unrecognized_keys'
          ? `unknown field(s): ${i.keys.join(', ')}`
          : i.code === 'invalid_key'
            ? (i.issues[0]?.message ?? i.message)
            : i.message,
    })),
  );
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
