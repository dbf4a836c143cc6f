import { readFile } from 'node:fs/promises';
import { CONTRACT_VERSION } from '../contract/message-contract.js';
import { ContractError } from '../errors/errors.js';
import { UploadRepository } from '../storage/upload-repository.js';
import { sniffAudio } from '../voice/audio-format.js';
import type { CliContext } from './cli-context.js';
import { followReplies } from '../connections/reply-waiter.js';
import { apiGet, apiSend, apiToken } from './remote-api.js';

/**
 * `ava enqueue --audio FILE`: checks the file by its bytes, then sends it through the API (JSON, base64) or stores it
 * in GridFS and enqueues a message referring to it, as the API would; `--wait` prints the reply with what was heard.
 */
export async function enqueueAudio(
  ctx: CliContext,
  file: string,
  ids: { messageId: string; conversationId: string; userId: string; language: string },
  opts: { wait: boolean; api?: string; token?: string },
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
  if (opts.api) {
    const token = apiToken(opts.token, ctx.config.cli.apiToken);
    console.log(
      JSON.stringify(await apiSend(opts.api, '/v1/messages/audio', token, { ...ids, audio: bytes.toString('base64') })),
    );
    if (opts.wait)
      print(
        (await apiGet(opts.api, `/v1/messages/${encodeURIComponent(ids.messageId)}?wait=30000`, token)) as {
          status: string;
        },
      );
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
  const fileId = await new UploadRepository(await ctx.db()).put(bytes, { contentType, messageId: ids.messageId });
  const { language, ...rest } = ids;
  console.log(
    JSON.stringify(
      await (
        await ctx.producer()
      ).enqueue({ v: CONTRACT_VERSION, ...rest, audio: { fileId, language }, createdAt: new Date().toISOString() }),
    ),
  );
  if (opts.wait) await followReplies(await ctx.db(), [ids.messageId], print, 120_000, await ctx.streams());
}
