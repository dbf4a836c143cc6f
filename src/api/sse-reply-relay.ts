import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { PeriodicTask } from '../tasks/periodic-task.js';
import type { ReplyDocument } from '../storage/reply-document.js';
import type { Logger } from '../logging/logger.js';
import type { ReplyStreamReader, StreamFollow } from '../queue/reply-stream-reader.js';
import type { StreamEntry, StreamEvent } from '../queue/reply-stream.js';
import { StreamedText } from '../queue/streamed-text.js';

/**
 * How a relay's events are written: each method returns the SSE text to send. AVA's own format (`token`, `reset`,
 * `reply`, `timeout`, `error` events with ids) or another protocol's, such as OpenAI's chunks.
 */
export interface SseFormat {
  token(text: string, id?: string): string;
  /** The client must drop the text it has; a format that cannot say so returns null and the relay logs it. */
  reset(id?: string): string | null;
  /** The last events: the stored reply, or null when none came in time. */
  final(doc: ReplyDocument | null): string;
  error(code: string, message: string): string;
}

/** AVA's own SSE events for `GET /v1/messages/:id/stream`. */
export function avaSseFormat(messageId: string, present: (doc: ReplyDocument) => unknown): SseFormat {
  const event = (name: string, data: unknown, id?: string) =>
    `${id ? `id: ${id}\n` : ''}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  return {
    token: (text, id) => event('token', { text }, id),
    reset: (id) => event('reset', {}, id),
    final: (doc) => (doc ? event('reply', present(doc)) : event('timeout', { messageId })),
    error: (code, message) => event('error', { code, message }),
  };
}

/** What a relay needs. */
export interface RelayDeps {
  streams: ReplyStreamReader;
  /** Reads the stored reply, or null while there is none. */
  readReply(messageId: string): Promise<ReplyDocument | null>;
  format: SseFormat;
  log: Logger;
  /** Longest wait for the reply before the stream ends with `timeout`, in ms. */
  timeoutMs: number;
  /** Period of SSE comment lines that keep idle proxies from closing the connection, in ms. */
  keepAliveMs: number;
}

/** Orders Redis stream ids (`<ms>-<seq>`). */
function idAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

/**
 * One SSE client of one message. Replays the message's stream from the start (or after `Last-Event-ID`) and
 * follows it live; `token` events carry the stream entry id as their SSE id, `reset` tells the client to drop the
 * text it has (a retried message generated again), and the last event is the stored `reply` or `timeout`. Before
 * `reply`, whatever the client lacks of the stored text is sent, so the client's concatenated tokens since its last
 * `reset` always equal the stored text, even when the stream expired or lost an entry.
 */
export class SseReplyRelay {
  /** Text of the current attempt as the client has it. */
  private readonly streamed = new StreamedText();
  /** Past the client's Last-Event-ID: entries are sent, not only replayed into the state. */
  private live: boolean;
  private open = true;
  private follow: StreamFollow | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private keepAlive: PeriodicTask | undefined;

  constructor(
    private readonly deps: RelayDeps,
    private readonly raw: ServerResponse,
    private readonly messageId: string,
    private readonly lastEventId: string | undefined,
  ) {
    this.live = lastEventId === undefined;
  }

  /** Starts relaying; never rejects (failures end the response and are logged). */
  async start(): Promise<void> {
    try {
      // Client gone: free the follower and the timers.
      this.raw.on('close', () => this.stop());
      this.follow = await this.deps.streams.follow(this.messageId, undefined, {
        onEntry: (e) => this.onEntry(e),
        onError: (err) =>
          this.deps.log.warn({ err, messageId: this.messageId }, 'reading a reply stream failed; retrying'),
      });
      if (!this.open) return this.follow.close();
      this.timers.push(setTimeout(() => void this.finish(), this.deps.timeoutMs));
      this.keepAlive = new PeriodicTask(
        async () => void (this.open && this.raw.write(': keep-alive\n\n')),
        this.deps.keepAliveMs,
      );
      this.keepAlive.start();
      await this.follow.catchUp();
      // Tokens reach the stream before their reply is stored, so a reply stored now has all its tokens relayed.
      if (this.open && (await this.deps.readReply(this.messageId))) await this.finish();
    } catch (err) {
      this.fail(err);
    }
  }

  private onEntry({ id, event }: StreamEntry): void {
    if (!this.open) return;
    if (!this.live && (id === this.lastEventId || idAfter(id, this.lastEventId!))) {
      this.live = true;
      if (id === this.lastEventId) return this.replay(event);
    }
    if (event.type === 'done') {
      void this.finish();
      return;
    }
    this.replay(event, id);
  }

  /** Applies a token to the state and, once live and given an id, sends it. */
  private replay(event: StreamEvent, id?: string): void {
    if (event.type !== 'token') return;
    const effect = this.streamed.apply(event);
    if (effect === 'ignore' || !this.live || !id) return;
    if (effect === 'restart') this.reset(id);
    this.raw.write(this.deps.format.token(event.text, id));
  }

  private async finish(): Promise<void> {
    if (!this.open) return;
    this.stop();
    try {
      const doc = await this.deps.readReply(this.messageId);
      if (doc?.status === 'replied') {
        // A Last-Event-ID the stream no longer holds: what the client has is unknown, so it starts over.
        const { restart, append } = this.streamed.reconcile(doc.text, this.live);
        if (restart) this.reset();
        if (append) this.raw.write(this.deps.format.token(append));
      }
      this.raw.end(this.deps.format.final(doc));
    } catch (err) {
      this.fail(err);
    }
  }

  private reset(id?: string): void {
    const text = this.deps.format.reset(id);
    if (text) this.raw.write(text);
    else
      this.deps.log.warn(
        { messageId: this.messageId },
        'the reply restarted, and this stream format cannot tell its client to drop what it has',
      );
  }

  private fail(err: unknown): void {
    this.deps.log.warn({ err, messageId: this.messageId }, 'reply stream ended by an error');
    this.stop();
    if (!this.raw.writableEnded) {
      if (!this.raw.destroyed)
        this.raw.write(this.deps.format.error('ERR_STREAM', 'the reply stream failed; read the reply or retry'));
      this.raw.end();
    }
  }

  private stop(): void {
    this.open = false;
    this.follow?.close();
    for (const t of this.timers) clearTimeout(t);
    this.keepAlive?.cancel();
  }
}

/**
 * Answers `reply` with a message's reply as Server-Sent Events, relayed by {@link SseReplyRelay}: the one place an SSE
 * response is opened. After the hijack the relay answers its own errors (an `error` event, then the end).
 */
export async function respondWithSse(
  reply: FastifyReply,
  deps: RelayDeps,
  messageId: string,
  lastEventId?: string,
): Promise<void> {
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  // A client learns the stream is open at once, not with its first event (which may be a keep-alive 15 s later).
  reply.raw.flushHeaders();
  await new SseReplyRelay(deps, reply.raw, messageId, lastEventId).start();
}
