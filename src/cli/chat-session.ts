import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { CONTRACT_VERSION } from '../contract/message-contract.js';
import type { FailedReplyDocument, RepliedDocument } from '../storage/reply-document.js';
import { followReplies } from '../connections/reply-waiter.js';
import type { CliContext } from './cli-context.js';
import { StreamedText } from '../queue/streamed-text.js';
import { SpeechRepository } from '../storage/speech-repository.js';
import { synthesizerFor } from '../voice/speech-synthesizer.js';

/** Where the chat sends messages: the HTTP API (URL and token) or Redis and the database directly. */
export type ChatTarget = { kind: 'api'; url: string; token: string } | { kind: 'direct'; ctx: CliContext };

/**
 * The seed's loop: `You> ` prompt, send the line, stream the reply as `Bot> …`; an empty line or Ctrl-D ends it.
 * One conversation id per session, so the assistant sees the history. With `audioDir`, each message asks for a
 * spoken reply and the reply's speech is saved there as `<messageId>.wav`.
 */
export async function runChat(
  target: ChatTarget,
  io: { input: Readable; output: Writable; userId: string; audioDir?: string },
): Promise<void> {
  const conversationId = `chat-${randomUUID()}`;
  const rl = createInterface({
    input: io.input,
    output: io.output,
    terminal: (io.output as { isTTY?: boolean }).isTTY ?? false,
  });
  const send = target.kind === 'api' ? apiSender(target) : await directSender(target.ctx);
  const speak = io.audioDir ? (target.kind === 'api' ? apiSpeech(target) : await directSpeech(target.ctx)) : undefined;
  if (io.audioDir) await mkdir(io.audioDir, { recursive: true });
  try {
    for (;;) {
      let line: string;
      try {
        line = await rl.question('You> ');
      } catch {
        break; // Ctrl-D closes the input
      }
      if (!line.trim()) break;
      io.output.write('Bot> ');
      const shown = new StreamedText();
      const show = (event: { text: string; attempt: string }) => {
        if (shown.apply({ type: 'token', ...event }) === 'restart') io.output.write(`\n${RESTARTED}\nBot> `);
        io.output.write(event.text);
      };
      const messageId = randomUUID();
      const reply = await send(
        {
          v: CONTRACT_VERSION,
          messageId,
          conversationId,
          userId: io.userId,
          text: line,
          ...(speak ? { speech: true } : {}),
        },
        show,
      );
      if (reply.status === 'failed') {
        io.output.write(`[failed: ${reply.error.code} ${reply.error.message}]\n`);
        continue;
      }
      // What was shown must be the stored reply: print what the stream missed, or the stored text again.
      const { restart, append } = shown.reconcile(reply.text);
      io.output.write(`${restart ? `\n${RESTARTED}\nBot> ` : ''}${append}\n`);
      if (speak && io.audioDir) {
        const file = path.join(io.audioDir, `${messageId}.wav`);
        await writeFile(file, await speak(messageId, reply.text));
        io.output.write(`[audio: ${file}]\n`);
      }
    }
  } finally {
    rl.close();
  }
}

/** Printed when the text shown so far is dropped: the message is generated again, or the stream missed a part. */
const RESTARTED = '[reply restarted]';

type Sender = (
  message: { v: 1; messageId: string; conversationId: string; userId: string; text: string; speech?: boolean },
  onToken: (token: { text: string; attempt: string }) => void,
) => Promise<Pick<RepliedDocument, 'status' | 'text'> | Pick<FailedReplyDocument, 'status' | 'error'>>;

async function directSender(ctx: CliContext): Promise<Sender> {
  const producer = await ctx.producer();
  const db = await ctx.db();
  const streams = await ctx.streams();
  return async (message, onToken) => {
    let failure: unknown;
    const key = ctx.key(message.messageId);
    const follow = await streams.follow(key, undefined, {
      onEntry: ({ event }) => event.type === 'token' && onToken(event),
      onError: (err) => (failure = err),
    });
    try {
      await producer.enqueue(message);
      let doc: RepliedDocument | FailedReplyDocument | undefined;
      await followReplies(db, [key], (d) => (doc = d), ctx.config.stream.replyTimeoutMs, streams);
      // Tokens reach the stream before their reply is stored: one more read delivers any still unread.
      await follow.catchUp();
      if (failure && !doc) throw failure;
      return doc!;
    } finally {
      follow.close();
    }
  };
}

function apiSender(target: { url: string; token: string }): Sender {
  const headers = { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' };
  return async (message, onToken) => {
    const posted = await fetch(new URL('/v1/messages', target.url), {
      method: 'POST',
      headers,
      body: JSON.stringify(message),
    });
    if (posted.status !== 202) throw new Error(`the API answered ${posted.status}: ${await posted.text()}`);
    const stream = await fetch(new URL(`/v1/messages/${message.messageId}/stream`, target.url), { headers });
    if (!stream.ok || !stream.body) throw new Error(`the API answered ${stream.status} to the stream request`);
    // The server restarts the text with `reset`; a fresh attempt name per reset lets the shown text follow it.
    let attempt = 0;
    let buffer = '';
    const decoder = new TextDecoder();
    const reader = stream.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const fields = Object.fromEntries(
          buffer
            .slice(0, cut)
            .split('\n')
            .filter((l) => !l.startsWith(':'))
            .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
        );
        buffer = buffer.slice(cut + 2);
        if (!fields.event) continue;
        const data = JSON.parse(fields.data ?? 'null');
        if (fields.event === 'token') onToken({ text: data.text, attempt: String(attempt) });
        else if (fields.event === 'reset') attempt++;
        else if (fields.event === 'reply') return data;
        else
          throw new Error(
            `no reply for ${message.messageId} (${fields.event}${data?.message ? `: ${data.message}` : ''})`,
          );
      }
    }
    throw new Error('the stream ended without a reply');
  };
}

/** A stored reply's speech as WAV. */
type Speaker = (messageId: string, text: string) => Promise<Buffer>;

/** Speech from the API's audio route (made by the worker, or on this first fetch). */
function apiSpeech(target: { url: string; token: string }): Speaker {
  return async (messageId) => {
    const res = await fetch(new URL(`/v1/messages/${encodeURIComponent(messageId)}/audio`, target.url), {
      headers: { authorization: `Bearer ${target.token}` },
    });
    if (!res.ok) throw new Error(`the API answered ${res.status} to the audio request: ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  };
}

/** Speech from the database's cache (the worker made it), else spoken here with espeak-ng and cached. */
async function directSpeech(ctx: CliContext): Promise<Speaker> {
  const speech = new SpeechRepository(await ctx.db());
  const synthesizer = synthesizerFor(ctx.config);
  return async (messageId, text) => {
    const key = ctx.key(messageId);
    const voice = synthesizer.voiceFor(text);
    const cached = await speech.get(key, voice, 'wav', text);
    if (cached) return cached;
    const { wav } = await synthesizer.synthesize(text);
    await speech.put(key, voice, 'wav', text, wav);
    return wav;
  };
}
