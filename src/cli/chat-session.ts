import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { CONTRACT_VERSION } from '../contract/message-contract.js';
import type { ReplyDocument } from '../contract/reply-document.js';
import { followReplies } from './follow-replies.js';
import type { CliContext } from './cli-context.js';
import { TokenSubscriber } from '../queue/token-stream.js';

/** Where the chat sends messages: the HTTP API (URL and token) or Redis and the database directly. */
export type ChatTarget = { kind: 'api'; url: string; token: string } | { kind: 'direct'; ctx: CliContext };

/**
 * The seed's loop: `You> ` prompt, send the line, stream the reply as `Bot> …`; an empty line or Ctrl-D ends it.
 * One conversation id per session, so the assistant sees the history.
 */
export async function runChat(target: ChatTarget, io: { input: Readable; output: Writable; userId: string }): Promise<void> {
  const conversationId = `chat-${randomUUID()}`;
  const rl = createInterface({ input: io.input, output: io.output, terminal: (io.output as { isTTY?: boolean }).isTTY ?? false });
  const send = target.kind === 'api' ? apiSender(target) : await directSender(target.ctx);
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
      const reply = await send({ v: CONTRACT_VERSION, messageId: randomUUID(), conversationId, userId: io.userId, text: line }, (t) => io.output.write(t));
      io.output.write(reply.status === 'failed' ? `[failed: ${reply.error?.code} ${reply.error?.message}]\n` : '\n');
    }
  } finally {
    rl.close();
  }
}

type Sender = (message: { v: 1; messageId: string; conversationId: string; userId: string; text: string }, onText: (t: string) => void) => Promise<Pick<ReplyDocument, 'status' | 'text' | 'error'>>;

async function directSender(ctx: CliContext): Promise<Sender> {
  const producer = await ctx.producer();
  const db = await ctx.db();
  const streams = new TokenSubscriber(await ctx.subscriber(), ctx.config.queuePrefix, ctx.config.queueName);
  return async (message, onText) => {
    let streamed = '';
    const stop = await streams.listen(message.messageId, (e) => {
      if (e.type === 'token') {
        streamed += e.text;
        onText(e.text);
      }
    });
    try {
      await producer.enqueue(message);
      let doc: ReplyDocument | undefined;
      await followReplies(db, [message.messageId], (d) => (doc = d));
      // Print whatever the stream missed (a generator that does not stream prints it all here).
      if (doc?.text && doc.text.startsWith(streamed)) onText(doc.text.slice(streamed.length));
      return doc!;
    } finally {
      stop();
    }
  };
}

function apiSender(target: { url: string; token: string }): Sender {
  const headers = { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' };
  return async (message, onText) => {
    const posted = await fetch(new URL('/v1/messages', target.url), { method: 'POST', headers, body: JSON.stringify(message) });
    if (posted.status !== 202) throw new Error(`the API answered ${posted.status}: ${await posted.text()}`);
    const stream = await fetch(new URL(`/v1/messages/${message.messageId}/stream`, target.url), { headers });
    if (!stream.ok || !stream.body) throw new Error(`the API answered ${stream.status} to the stream request`);
    let streamed = '';
    let buffer = '';
    const decoder = new TextDecoder();
    const reader = stream.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const [eventLine, dataLine] = buffer.slice(0, cut).split('\n');
        buffer = buffer.slice(cut + 2);
        const event = eventLine.slice('event: '.length);
        const data = JSON.parse(dataLine.slice('data: '.length));
        if (event === 'token') {
          streamed += data.text;
          onText(data.text);
        } else if (event === 'reply') {
          if (data.text?.startsWith(streamed)) onText(data.text.slice(streamed.length));
          return data;
        } else {
          throw new Error(`no reply yet for ${message.messageId} (${event})`);
        }
      }
    }
    throw new Error('the stream ended without a reply');
  };
}
