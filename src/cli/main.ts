import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { CONTRACT_VERSION, type MessageInput } from '../contract/message-contract.js';
import { AvaError, ContractError } from '../errors/errors.js';
import { CliContext } from './cli-context.js';
import { ConversationRepository } from '../storage/conversation-repository.js';
import { followReplies } from './follow-replies.js';
import { runChat } from './chat-session.js';

const program = new Command('ava')
  .description('AVA virtual-assistant backend: enqueue messages and read stored replies.\nConfiguration comes from AVA_* environment variables (see README).')
  .showHelpAfterError();

program
  .command('enqueue')
  .description('enqueue one message from arguments, or JSON lines (one message per line) from stdin')
  .argument('[text...]', 'message text; omit to read JSON lines from stdin')
  .option('-c, --conversation <id>', 'conversation id', 'cli')
  .option('-u, --user <id>', 'user id', 'cli-user')
  .option('-i, --id <messageId>', 'message id (default: a random UUID)')
  .option('--wait', 'wait for the replies and print them', false)
  .addHelpText('after', `
Examples:
  ava enqueue -c order-42 -u alice "Where is my parcel?"
  echo '{"v":1,"messageId":"m1","conversationId":"c1","userId":"u1","text":"你好"}' | ava enqueue --wait`)
  .action(async (words: string[], opts: { conversation: string; user: string; id?: string; wait: boolean }) => {
    const ctx = new CliContext();
    try {
      const messages: MessageInput[] = words.length > 0
        ? [{ v: CONTRACT_VERSION, messageId: opts.id ?? randomUUID(), conversationId: opts.conversation, userId: opts.user, text: words.join(' '), createdAt: new Date().toISOString() }]
        : await readJsonLines();
      const results = await (await ctx.producer()).enqueueMany(messages);
      for (const r of results) console.log(JSON.stringify(r));
      if (opts.wait) {
        await followReplies(await ctx.db(), results.map((r) => r.messageId), (doc) => console.log(JSON.stringify({ messageId: doc._id, status: doc.status, text: doc.text, error: doc.error })));
      }
    } finally {
      await ctx.close();
    }
  });

program
  .command('chat')
  .description('chat with the assistant: You> prompt, replies streamed as Bot> …; an empty line or Ctrl-D ends')
  .option('--api <url>', 'talk to the HTTP API at this URL (default: straight to Redis and the database)')
  .option('--token <token>', 'API bearer token (default: AVA_API_TOKEN)')
  .option('-u, --user <id>', 'user id', 'cli-user')
  .addHelpText('after', `
Examples:
  ava chat
  ava chat --api http://127.0.0.1:8080 --token "$AVA_API_TOKEN"`)
  .action(async (opts: { api?: string; token?: string; user: string }) => {
    const ctx = new CliContext();
    try {
      const token = opts.token ?? process.env.AVA_API_TOKEN;
      if (opts.api && !token) throw new ContractError([{ path: '--token', message: 'an API token is needed with --api (or set AVA_API_TOKEN)' }]);
      await runChat(opts.api ? { kind: 'api', url: opts.api, token: token! } : { kind: 'direct', ctx }, { input: process.stdin, output: process.stdout, userId: opts.user });
    } finally {
      await ctx.close();
    }
  });

program
  .command('conversation')
  .description('show one conversation: its recent turns')
  .argument('<id>', 'conversation id')
  .action(async (id: string) => {
    const ctx = new CliContext();
    try {
      const repo = new ConversationRepository(await ctx.db(), { maxTurns: ctx.config.historyTurns, maxChars: ctx.config.historyChars });
      const doc = await repo.get(id);
      if (!doc) {
        console.error(`no conversation ${id}`);
        process.exitCode = 1;
        return;
      }
      console.log(JSON.stringify(doc, null, 2));
    } finally {
      await ctx.close();
    }
  });

async function readJsonLines(): Promise<MessageInput[]> {
  if (process.stdin.isTTY) throw new ContractError([{ path: '(stdin)', message: 'no text given and stdin is a terminal; pass text or pipe JSON lines' }]);
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
