import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MessageInput } from '../contract/message-contract.js';
import { AvaError } from '../errors/errors.js';
import { CliContext } from './cli-context.js';
import { followReplies } from './follow-replies.js';

/**
 * The demo's client: enqueues the sample messages (fresh ids each run, so every run is answered anew) and prints
 * each reply as the worker stores it.
 */
const file = process.argv[2] ?? 'sample/messages.jsonl';
const ctx = new CliContext();
try {
  const run = Date.now().toString(36);
  const messages = (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MessageInput)
    .map((m) => ({ ...m, messageId: `${m.messageId}-${run}`, conversationId: `${m.conversationId}-${run}`, createdAt: new Date().toISOString() }));
  const db = await ctx.db();
  const producer = await ctx.producer();
  await waitForWorker(producer.bullQueue);
  await producer.enqueueMany(messages);
  console.log(`enqueued ${messages.length} messages on queue "${ctx.config.queueName}"; replies as they are stored:\n`);
  const byId = new Map(messages.map((m) => [m.messageId, m]));
  await followReplies(db, messages.map((m) => m.messageId), (doc) => {
    const m = byId.get(doc._id)!;
    console.log(`[${m.conversationId}] You> ${m.text}`);
    console.log(doc.status === 'replied' ? `[${m.conversationId}] Bot> ${doc.text?.trim()}` : `[${m.conversationId}] failed: ${doc.error?.code} ${doc.error?.message}`);
    console.log(`    (${doc.tokens.prompt} prompt tokens, ${doc.tokens.generated} generated, batch inference ${doc.timings.inferenceMs} ms, model ${doc.model.id}@${doc.model.revision})\n`);
  });
  console.log('all replies stored. (The tiny forged model has random weights, so its replies are not language; see models/README.md.)');
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await ctx.close();
}

/** Waits until a worker is connected to the queue, so the first replies are not slowed by model loading. */
async function waitForWorker(queue: { getWorkersCount(): Promise<number> }): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await queue.getWorkersCount()) > 0) return;
    await sleep(100);
  }
  throw new Error('no worker connected within 60 s; see .services/demo-worker.log');
}
