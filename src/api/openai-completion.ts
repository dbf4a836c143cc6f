import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CONTRACT_VERSION, messageSchema, type MessageInput } from '../contract/message-contract.js';
import { waitForReply } from '../connections/reply-waiter.js';
import type { EncoderOnDemand } from '../embedding/encoder-on-demand.js';
import type { Logger } from '../logging/logger.js';
import type { MessageProducer } from '../queue/message-producer.js';
import type { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import type { ReplyRepository } from '../storage/reply-repository.js';
import { failedReplyError, HttpError } from './http-error.js';
import type { ChatCompletionRequest, CompletionRequest } from './openai-schemas.js';
import { openAiSseFormat, usageOf } from './openai-sse-format.js';
import { respondWithSse } from './sse-reply-relay.js';
import { keyOf } from './request-tenant.js';
import type { TenantQuotas } from './tenant-quotas.js';

/** What the OpenAI-compatible routes need. */
export interface OpenAiDeps {
  producer: MessageProducer;
  replies: ReplyRepository;
  streams: ReplyStreamReader;
  quotas: TenantQuotas;
  log: Logger;
  /** `/v1/embeddings` requests encoded at once. */
  embeddingConcurrency: number;
  /** Longest wait for a reply before a request fails with a timeout, in ms (`AVA_REPLY_TIMEOUT_MS`). */
  replyTimeoutMs: number;
  /**
   * The assistant's model id (`GET /v1/models`): intents, knowledge and handlers answer, the model when none does.
   * `<modelId>-raw` is the same model alone: plain completion, no intents.
   */
  modelId: string;
  /** The sentence encoder, served by `POST /v1/embeddings` and listed as a model; none without one. */
  encoder?: EncoderOnDemand;
}

/** Suffix of the raw model's id: the model alone, no intents. */
export const RAW_MODEL_SUFFIX = '-raw';
/** Header naming the AVA conversation a request belongs to; without it every request is a conversation of its own. */
export const CONVERSATION_HEADER = 'x-ava-conversation-id';
const USER_ID = messageSchema.shape.userId;

/** What a completion request asks, in AVA's terms: the text, the dialogue before it and the instructions. */
export interface CompletionInput {
  text: string;
  history: Array<{ user: string; assistant: string }>;
  instructions: string;
}

/**
 * A chat or text completion: the request becomes a message on the queue, and the answer is its stored reply,
 * whole or streamed as OpenAI's chunks (which concatenate to exactly its text).
 */
export class OpenAiCompletions {
  /** The raw model's id. */
  readonly rawModelId: string;
  /** The model ids completions accept: the assistant and the raw model. */
  readonly served: readonly string[];

  constructor(private readonly deps: OpenAiDeps) {
    this.rawModelId = `${deps.modelId}${RAW_MODEL_SUFFIX}`;
    this.served = [deps.modelId, this.rawModelId];
  }

  /** Answers one completion request. */
  async complete(
    req: FastifyRequest,
    reply: FastifyReply,
    body: ChatCompletionRequest | CompletionRequest,
    input: CompletionInput,
    kind: 'chat' | 'text',
  ) {
    const message = this.message(req, body, input, kind);
    const messageId = message.messageId;
    const key = keyOf(req, messageId);
    await this.deps.quotas.admit(req.tenant, [message], () => 'body');
    await this.deps.producer.enqueue(message);
    const created = Math.floor(Date.now() / 1000);
    if (body.stream) {
      const format = openAiSseFormat({
        id: messageId,
        created,
        model: body.model,
        kind,
        includeUsage: body.stream_options?.include_usage === true,
      });
      const closed = this.deps.quotas.openStream(req.tenant);
      reply.raw.once('close', closed);
      await respondWithSse(
        reply,
        {
          streams: this.deps.streams,
          readReply: (id) => this.deps.replies.get(id),
          format,
          log: this.deps.log,
          timeoutMs: this.deps.replyTimeoutMs,
          keepAliveMs: 15_000,
        },
        key,
      );
      return;
    }
    const doc = await waitForReply(this.deps, key, this.deps.replyTimeoutMs);
    if (!doc)
      throw new HttpError(
        504,
        'timeout',
        `no reply within ${this.deps.replyTimeoutMs / 1000} s; it will still be stored as message ${messageId}`,
      );
    if (doc.status === 'failed') throw failedReplyError(doc.error);
    const choice =
      kind === 'chat'
        ? {
            index: 0,
            message: { role: 'assistant', content: doc.text, refusal: null },
            logprobs: null,
            finish_reason: doc.finishReason,
          }
        : { index: 0, text: doc.text, logprobs: null, finish_reason: doc.finishReason };
    return {
      id: messageId,
      object: kind === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model: body.model,
      choices: [choice],
      usage: usageOf(doc),
    };
  }

  /** The queued message of a request, after its model is checked. */
  private message(
    req: FastifyRequest,
    body: ChatCompletionRequest | CompletionRequest,
    input: CompletionInput,
    kind: 'chat' | 'text',
  ): MessageInput {
    if (body.model !== this.deps.modelId && body.model !== this.rawModelId) {
      throw new HttpError(
        404,
        'model_not_found',
        `the model ${JSON.stringify(body.model)} does not exist; this server serves ${this.served
          .map((m) => JSON.stringify(m))
          .join(' and ')}`,
        [{ path: 'model', message: 'unknown model' }],
      );
    }
    const { text, history, instructions } = input;
    // The raw model: a chat goes to the model with its dialogue, a text completion continues the prompt as it is.
    const mode = body.model === this.rawModelId ? (kind === 'chat' ? 'dialogue' : 'text') : undefined;
    const messageId = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    const maxNewTokens =
      ('max_completion_tokens' in body ? body.max_completion_tokens : undefined) ?? body.max_tokens ?? undefined;
    const generation = {
      ...(maxNewTokens ? { maxNewTokens } : {}),
      ...(typeof body.temperature === 'number' ? { temperature: body.temperature } : {}),
      ...(typeof body.top_p === 'number' ? { topP: body.top_p } : {}),
      ...(body.stop ? { stop: typeof body.stop === 'string' ? [body.stop] : body.stop } : {}),
      ...(typeof body.seed === 'number' ? { seed: body.seed } : {}),
    };
    const message: MessageInput = {
      v: CONTRACT_VERSION,
      tenant: req.tenant,
      messageId,
      conversationId: conversationOf(req, messageId),
      userId: userOf(body.user, req.caller.name),
      text,
      ...(Object.keys(generation).length > 0 ? { generation } : {}),
      ...(history.length > 0 ? { history } : {}),
      ...(instructions ? { instructions } : {}),
      ...(mode ? { mode } : {}),
    };
    return message;
  }
}

/** The conversation a request names in its header, checked as the contract does; else one of its own. */
function conversationOf(req: FastifyRequest, messageId: string): string {
  const header = req.headers[CONVERSATION_HEADER];
  if (header === undefined) return messageId;
  const parsed = messageSchema.shape.conversationId.safeParse(header);
  if (!parsed.success)
    throw new HttpError(400, 'ERR_REQUEST', `header ${CONVERSATION_HEADER}: ${parsed.error.issues[0].message}`, [
      { path: `header.${CONVERSATION_HEADER}`, message: parsed.error.issues[0].message },
    ]);
  return parsed.data;
}

/** OpenAI's `user` is any string; one that is not an AVA id is kept as a stable hash of it. */
function userOf(user: string | undefined, caller: string): string {
  if (user === undefined) return caller || 'openai';
  return USER_ID.safeParse(user).success
    ? user
    : `user-${createHash('sha256').update(user).digest('hex').slice(0, 24)}`;
}
