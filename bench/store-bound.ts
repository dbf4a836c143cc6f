/**
 * `npm run bench:store-bound`: the bound the storage puts on a worker's hot path, measured alone. Two processes (as
 * `bench:pipeline` runs two workers), each taking up to BENCH_BATCH_SIZE (256) jobs with BullMQ's `getNextJob`,
 * inserting the batch's processing records, replies and turns (the documents a worker writes, one `insertMany` each)
 * and acknowledging every job; no parsing, intents, history, streams or model. On an empty store, then on one
 * pre-filled with BENCH_PREFILL (1,000,000) messages. Prints a table, writes bench/results/store-bound-<timestamp>.json
 * with the pre-filled/empty ratio. BENCH_MESSAGES (20,000) messages per run.
 */
import { fork } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../src/config/config.js';
import { Database } from '../src/storage/database.js';
import { machine, writeResult } from './lib/bench-utils.js';
import { prefillStore } from './lib/prefill.js';

const N = Number(process.env.BENCH_MESSAGES || 20_000);
const PREFILL = Number(process.env.BENCH_PREFILL ?? 1_000_000);
const BATCH = Number(process.env.BENCH_BATCH_SIZE || 256);
const PROCESSES = 2;
const config = loadConfig();

/** When a drain took its first job and acknowledged its last, in ms since the epoch (comparable across processes). */
interface DrainSpan {
  first: number;
  last: number;
}

const epochMs = () => performance.timeOrigin + performance.now();

/**
 * A child process: drains the queue in batches, writing what a worker writes, until it has found no job 20 times in a
 * row; returns when it took its first job and acknowledged its last, so that start-up and the idle tail are not timed.
 */
async function drain(queueName: string, dbName: string): Promise<DrainSpan> {
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const worker = new Worker(queueName, null, { connection: redis, autorun: false, lockDuration: 60_000 });
  const db = await Database.connect(config.storage.url, dbName);
  let idle = 0;
  let seq = 0;
  const span: DrainSpan = { first: 0, last: 0 };
  while (idle < 20) {
    const token = `t${process.pid}-${++seq}`;
    const jobs = [];
    const asked = epochMs();
    for (
      let job = await worker.getNextJob(token, { block: false });
      job;
      job = jobs.length < BATCH ? await worker.getNextJob(token, { block: false }) : undefined
    )
      jobs.push(job);
    if (jobs.length === 0) {
      idle++;
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (span.first === 0) span.first = asked;
    idle = 0;
    const now = new Date();
    await db.messages.insertMany(
      jobs.map((j) => ({
        _id: j.id!,
        tenant: 'default',
        conversationId: j.data.conversationId,
        userId: j.data.userId,
        status: 'processing' as const,
        queuedAt: new Date(j.timestamp),
        startedAt: now,
        attempts: 0,
      })),
      { ordered: false },
    );
    await db.replies.insertMany(
      jobs.map((j) => ({
        _id: j.id!,
        tenant: 'default',
        conversationId: j.data.conversationId,
        userId: j.data.userId,
        status: 'replied' as const,
        text: 'Thank you for your message.',
        finishReason: 'stop' as const,
        intent: 'unknown',
        model: { id: 'bound', revision: 'none' },
        tokens: { prompt: 0, generated: 0 },
        timings: { queuedAt: new Date(j.timestamp), startedAt: now, finishedAt: now, inferenceMs: 0 },
        createdAt: now,
      })),
      { ordered: false },
    );
    await db.turns.insertMany(
      jobs.map((j) => ({
        _id: j.id!,
        tenant: 'default',
        conversationId: j.data.conversationId,
        user: j.data.text,
        assistant: 'Thank you for your message.',
        intent: 'unknown',
        at: new Date(j.timestamp),
      })),
      { ordered: false },
    );
    await Promise.all(jobs.map((j) => j.moveToCompleted({ status: 'replied' }, token, false)));
    span.last = epochMs();
  }
  await worker.close();
  redis.disconnect();
  await db.close();
  return span;
}

async function measure(
  label: string,
  dbName: string,
): Promise<{ run: string; messages: number; 'messages/s': number }> {
  const queueName = `bound_${label.replace(/\W+/g, '_')}_${Date.now()}`;
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection: redis });
  for (let s = 0; s < N; s += 1000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1000, N - s) }, (_, k) => ({
        name: 'message',
        data: {
          conversationId: `c-${(s + k) % 500}`,
          userId: 'u',
          text: `Message ${s + k}: could you tell me a story about the sea?`,
        },
        opts: { jobId: `${queueName}-${s + k}` },
      })),
    );
  }
  const spans = await Promise.all(
    Array.from({ length: PROCESSES }, () => {
      const child = fork(fileURLToPath(import.meta.url), ['drain', queueName, dbName], {
        execArgv: ['--import', 'tsx'],
      });
      let span: DrainSpan | undefined;
      child.on('message', (m) => (span = m as DrainSpan));
      return new Promise<DrainSpan>((resolve, reject) =>
        child.on('exit', (code) => (code === 0 && span ? resolve(span) : reject(new Error(`drain exited ${code}`)))),
      );
    }),
  );
  // From the first job taken by either process to the last acknowledged: the processes' start-up (a forked tsx)
  // and the drains' idle tail are outside it.
  const seconds = (Math.max(...spans.map((s) => s.last)) - Math.min(...spans.map((s) => s.first))) / 1000;
  const completed = (await queue.getJobCounts('completed')).completed;
  if (completed !== N) throw new Error(`${label}: ${completed} of ${N} jobs completed`);
  await queue.obliterate({ force: true });
  await queue.close();
  redis.disconnect();
  return { run: label, messages: N, 'messages/s': +(N / seconds).toFixed(1) };
}

if (process.argv[2] === 'drain') {
  const span = await drain(process.argv[3], process.argv[4]);
  process.send!(span, () => process.exit(0));
} else {
  await main();
}

/** Measures the bound on an empty store and on a pre-filled one, and writes the result. */
async function main(): Promise<void> {
  execFileSync('bash', ['scripts/services.sh', 'up'], { stdio: 'inherit' });
  const stamp = Date.now();
  const emptyDb = `bound_empty_${stamp}`;
  const fullDb = `bound_full_${stamp}`;
  try {
    const empty = await measure('inserts and acks only, empty store', emptyDb);
    if (PREFILL > 0) {
      const db = await Database.connect(config.storage.url, fullDb);
      await prefillStore(db, PREFILL, (done) => process.stderr.write(`pre-filled ${done} of ${PREFILL}\r`));
      process.stderr.write('\n');
      await db.close();
    }
    const full = await measure(`inserts and acks only, ${PREFILL.toLocaleString('en')} stored`, fullDb);
    const ratio = +(full['messages/s'] / empty['messages/s']).toFixed(2);
    console.table([empty, full]);
    console.log(`pre-filled / empty: ${ratio}`);
    console.log(
      `written ${await writeResult('store-bound', { benchmark: 'store-bound', machine: machine(), processes: PROCESSES, batchSize: BATCH, prefill: PREFILL, rows: [empty, full], ratios: { prefilledOverEmpty: ratio } })}`,
    );
  } finally {
    const client = await MongoClient.connect(config.storage.url);
    await client.db(emptyDb).dropDatabase();
    await client.db(fullDb).dropDatabase();
    await client.close();
  }
}
