import { readFile } from 'node:fs/promises';
import { CONTRACT_VERSION, type MessageInput } from '../contract/message-contract.js';
import { createHash } from 'node:crypto';
import { ContractError } from '../errors/errors.js';
import { UploadRepository } from '../storage/upload-repository.js';
import { sniffAudio } from '../voice/audio-format.js';
import type { CliContext } from './cli-context.js';
import { followReplies } from '../connections/reply-waiter.js';
import type { CliBackend } from './cli-backend.js';
import { apiReply, apiSend } from './remote-api.js';

/**
 * `ava enqueue --audio FILE`: checks the file by its bytes, then sends it through the API (JSON, base64) or stores it
 * in GridFS and enqueues a message referring to it, as the API would; `--wait` prints the reply with what was heard.
 */
export async function enqueueAudio(
  ctx: CliContext,
  file: string,
  ids: { messageId: string; conversationId: string; userId: string; language?: string },
  backend: CliBackend,
  wait: boolean,
): Promise<void> {
  const bytes = await readFile(file);
  const { contentType } = sniffAudio(bytes);
  const print = (doc: { status: string; text?: string; error?: unknown; transcript?: { text: string } }) =>
    console.log(
      JSON.stringify({
        messageId: ids.messageId,
        status: doc.status,
        heard: doc.transcript?.text,
        text: doc.text,
        error: doc.error,
      }),
    );
  if (backend.kind === 'api') {
    const { url, token } = backend;
    console.log(
      JSON.stringify(await apiSend(url, '/v1/messages/audio', token, { ...ids, audio: bytes.toString('base64') })),
    );
    if (wait) print(await apiReply(url, token, ids.messageId, ctx.config.stream.replyTimeoutMs));
    return;
  }
  const maxBytes = ctx.config.voice.maxBytes;
  if (bytes.length > maxBytes)
    throw new ContractError([
      {
        path: '--audio',
        message: `${file} is ${bytes.length} bytes; at most ${maxBytes} are accepted (AVA_AUDIO_MAX_BYTES)`,
      },
    ]);
  const { language, ...rest } = ids;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const tenant = ctx.config.queue.tenant;
  const message = (fileId: string): MessageInput => ({
    v: CONTRACT_VERSION,
    tenant,
    ...rest,
    audio: { fileId, ...(language ? { language } : {}), sha256 },
  });
  const uploads = new UploadRepository(await ctx.db());
  // A message sent before with this file is accepted again without storing the file again.
  const { fileId: _, ...queued } = await (
    await ctx.producer()
  ).enqueueWithUpload(message, {
    store: (key, tenant) => uploads.put(bytes, { contentType, messageId: key, tenant }),
    discard: (id) => uploads.delete(id),
  });
  console.log(JSON.stringify(queued));
  if (wait)
    await followReplies(
      await ctx.db(),
      [ctx.key(ids.messageId)],
      print,
      ctx.config.stream.replyTimeoutMs,
      await ctx.streams(),
    );
}
