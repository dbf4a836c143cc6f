import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { CONTRACT_VERSION, type MessageInput } from '../contract/message-contract.js';
import { AvaError, ContractError } from '../errors/errors.js';
import { CliContext } from './cli-context.js';
import { ConversationRepository } from '../storage/conversation-repository.js';
import { DialogueState } from '../conversation/dialogue-state.js';
import { followReplies } from '../connections/reply-waiter.js';
import { runChat } from './chat-session.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectStats } from '../metrics/service-stats.js';
import { registerKnowledgeCommands } from './kb-command.js';
import { conversationText } from './conversation-text.js';
import { enqueueAudio } from './enqueue-audio.js';
import { apiGet, apiReader, apiReply, apiSend } from './remote-api.js';
import { backendOf, withBackendOptions } from './cli-backend.js';
import { directReader } from './reply-pages.js';
import { idOfKey } from '../contract/scoped-key.js';
import { presentConversation } from '../conversation/presented.js';

const program = new Command('ava')
  .description(
    'AVA virtual-assistant backend: enqueue messages and read stored replies.\nConfiguration comes from AVA_* environment variables (see README).',
  )
  .showHelpAfterError();

withBackendOptions(program.command('enqueue'))
  .description(
    'enqueue one message from arguments, a voice message from an audio file, or JSON lines (one message per line) from stdin',
  )
  .argument('[text...]', 'message text; omit to read JSON lines from stdin')
  .option('-a, --audio <file>', 'send this audio file (WAV, Ogg/Opus, WebM, MP3, FLAC, MP4) as a voice message')
  .option(
    '-l, --language <code>',
    'language spoken in --audio (default: the worker detects it with Whisper, else English)',
  )
  .option('-c, --conversation <id>', 'conversation id', 'cli')
  .option('-u, --user <id>', 'user id', 'cli-user')
  .option('-i, --id <messageId>', 'message id (default: a random UUID)')
  .option('--wait', 'wait for the replies and print them', false)
  .addHelpText(
    'after',
    `
Examples:
  ava enqueue -c order-42 -u alice "Where is my parcel?"
  ava enqueue --audio question.wav --wait
  echo '{"v":1,"messageId":"m1","conversationId":"c1","userId":"u1","text":"你好"}' | ava enqueue --wait`,
  )
  .action(
    async (
      words: string[],
      opts: {
        conversation: string;
        user: string;
        id?: string;
        wait: boolean;
        api?: string;
        token?: string;
        audio?: string;
        language?: string;
      },
    ) => {
      const ctx = new CliContext();
      try {
        const backend = backendOf(opts, ctx.config.cli.apiToken);
        if (opts.audio)
          return await enqueueAudio(
            ctx,
            opts.audio,
            {
              messageId: opts.id ?? randomUUID(),
              conversationId: opts.conversation,
              userId: opts.user,
              ...(opts.language ? { language: opts.language } : {}),
            },
            backend,
            opts.wait,
          );
        const messages: MessageInput[] =
          words.length > 0
            ? [
                {
                  v: CONTRACT_VERSION,
                  messageId: opts.id ?? randomUUID(),
                  conversationId: opts.conversation,
                  userId: opts.user,
                  text: words.join(' '),
                  createdAt: new Date().toISOString(),
                },
              ]
            : await readJsonLines();
        const print = (doc: { status: string; text?: string; error?: unknown }, messageId: string) =>
          console.log(JSON.stringify({ messageId, status: doc.status, text: doc.text, error: doc.error }));
        if (backend.kind === 'api') {
          const { url, token } = backend;
          const results = (await apiSend(url, '/v1/messages', token, messages)) as Array<{ messageId: string }>;
          for (const r of results) console.log(JSON.stringify(r));
          if (opts.wait)
            for (const r of results)
              print(await apiReply(url, token, r.messageId, ctx.config.stream.replyTimeoutMs), r.messageId);
          return;
        }
        const results = await (await ctx.producer()).enqueueMany(messages);
        for (const r of results) console.log(JSON.stringify(r));
        if (opts.wait)
          await followReplies(
            await ctx.db(),
            results.map((r) => ctx.key(r.messageId)),
            (doc) => print(doc, idOfKey(doc._id)),
            ctx.config.stream.replyTimeoutMs,
            await ctx.streams(),
          );
      } finally {
        await ctx.close();
      }
    },
  );

withBackendOptions(program.command('chat'))
  .description('chat with the assistant: You> prompt, replies streamed as Bot> …; an empty line or Ctrl-D ends')
  .option('-u, --user <id>', 'user id', 'cli-user')
  .option('--save-audio <dir>', 'ask for spoken replies and save each as <dir>/<messageId>.wav')
  .addHelpText(
    'after',
    `
Examples:
  ava chat
  ava chat --save-audio replies/
  ava chat --api http://127.0.0.1:8080 --token "$AVA_API_TOKEN"`,
  )
  .action(async (opts: { api?: string; token?: string; user: string; saveAudio?: string }) => {
    const ctx = new CliContext();
    try {
      const backend = backendOf(opts, ctx.config.cli.apiToken);
      await runChat(backend.kind === 'api' ? backend : { kind: 'direct', ctx }, {
        input: process.stdin,
        output: process.stdout,
        userId: opts.user,
        ...(opts.saveAudio ? { audioDir: opts.saveAudio } : {}),
      });
    } finally {
      await ctx.close();
    }
  });

withBackendOptions(program.command('replies'))
  .description('print stored replies as JSON lines, oldest first; --follow keeps printing new ones')
  .option('--since <cursor>', 'resume after this cursor (printed as "next" on stderr) or ISO date-time')
  .option('--limit <n>', 'replies per page', (v) => Number(v), 100)
  .option('--status <status>', 'replied or failed')
  .option('-f, --follow', 'keep polling for new replies until Ctrl-C', false)
  .action(
    async (opts: {
      since?: string;
      limit: number;
      status?: 'replied' | 'failed';
      follow: boolean;
      api?: string;
      token?: string;
    }) => {
      const ctx = new CliContext();
      try {
        const backend = backendOf(opts, ctx.config.cli.apiToken);
        const page =
          backend.kind === 'api'
            ? apiReader(backend.url, backend.token)
            : directReader(await ctx.db(), ctx.config.queue.tenant);
        let since = opts.since;
        for (;;) {
          const { items, next } = await page({ since, limit: opts.limit, status: opts.status });
          for (const item of items) console.log(JSON.stringify(item));
          since = next ?? since;
          if (items.length === opts.limit) continue;
          if (!opts.follow) break;
          await sleep(1_000);
        }
        if (since) process.stderr.write(`next: ${since}\n`);
      } finally {
        await ctx.close();
      }
    },
  );

withBackendOptions(program.command('stats'))
  .description('queue depth, live workers, reply counts and recent latency')
  .action(async (opts: { api?: string; token?: string }) => {
    const ctx = new CliContext();
    try {
      const backend = backendOf(opts, ctx.config.cli.apiToken);
      const stats =
        backend.kind === 'api'
          ? await apiGet(backend.url, '/v1/stats', backend.token)
          : await collectStats((await ctx.producer()).view, await ctx.redis(), ctx.keys);
      console.log(JSON.stringify(stats, null, 2));
    } finally {
      await ctx.close();
    }
  });

withBackendOptions(program.command('conversation'))
  .description('show one conversation: its recent turns with their intents, and the status of its recent messages')
  .argument('<id>', 'conversation id')
  .option('--text', 'print it for people (turns, then message statuses) instead of JSON', false)
  .action(async (id: string, opts: { api?: string; token?: string; text: boolean }) => {
    const ctx = new CliContext();
    try {
      const backend = backendOf(opts, ctx.config.cli.apiToken);
      const doc =
        backend.kind === 'api'
          ? await apiGet(backend.url, `/v1/conversations/${encodeURIComponent(id)}`, backend.token).catch(
              (err: Error) => {
                if (/answered 404/.test(err.message)) return null;
                throw err;
              },
            )
          : await new DialogueState(
              await ctx.db(),
              new ConversationRepository(await ctx.db(), {
                maxTurns: ctx.config.history.turns,
                maxChars: ctx.config.history.chars,
              }),
              (await ctx.producer()).view,
            )
              .conversation(ctx.key(id))
              .then((view) => view && presentConversation(view));
      if (!doc) {
        console.error(`no conversation ${id}`);
        process.exitCode = 1;
        return;
      }
      console.log(
        opts.text ? conversationText(doc as Parameters<typeof conversationText>[0]) : JSON.stringify(doc, null, 2),
      );
    } finally {
      await ctx.close();
    }
  });

registerKnowledgeCommands(program);

async function readJsonLines(): Promise<MessageInput[]> {
  if (process.stdin.isTTY)
    throw new ContractError([
      { path: '(stdin)', message: 'no text given and stdin is a terminal; pass text or pipe JSON lines' },
    ]);
  const out: MessageInput[] = [];
  let n = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    n++;
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MessageInput);
    } catch (err) {
      throw new ContractError([{ path: `line ${n}`, message: `not valid JSON: ${(err as Error).message}` }]);
    }
  }
  return out;
}

try {
  await program.parseAsync();
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
