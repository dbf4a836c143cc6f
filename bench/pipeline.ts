/**
 * `npm run bench:pipeline`: messages end to end through worker processes on the local Redis and database.
 *
 * 1. The instant generator (a fixed reply, no model: what the queue and storage cost by themselves) on an empty
 *    store, all messages enqueued at once: the baseline.
 * 2. The same on a store pre-filled with BENCH_PREFILL messages (their replies, turns, processing records and
 *    conversations, bulk-inserted first), then again enqueued at that maximum rate and at half of it, for latency.
 * 3. The tiny model on the engine, on the pre-filled store.
 *
 * Prints a table of messages/s and p50/p99 enqueue-to-stored latency, the mean time of each step of a batch, and the
 * pre-filled/empty ratio; checks one reply per message; writes bench/results/pipeline-<timestamp>.json.
 * Settings: BENCH_MESSAGES (10,000), BENCH_PREFILL (0), BENCH_WORKERS (2), BENCH_BATCH_SIZE (64),
 * BENCH_ENGINE_MESSAGES (2,000; 0 skips the engine run).
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig, type AvaConfig } from '../src/config/config.js';
import { ReplyCounters } from '../src/metrics/reply-counters.js';
import { MessageProducer } from '../src/queue/message-producer.js';
import { Database } from '../src/storage/database.js';
import { spawnWorker, type WorkerProcess } from '../test/helpers/services.js';
import { machine, quantile, writeResult } from './lib/bench-utils.js';
import { prefillStore } from './lib/prefill.js';

const N = Number(process.env.BENCH_MESSAGES || 10_000);
const PREFILL = Number(process.env.BENCH_PREFILL || 0);
const WORKERS = Number(process.env.BENCH_WORKERS || 2);
const BATCH = process.env.BENCH_BATCH_SIZE || '64';
const ENGINE_N = Number(process.env.BENCH_ENGINE_MESSAGES ?? 2_000);
execFileSync('bash', ['scripts/services.sh', 'up'], { stdio: 'inherit' });
const stamp = Date.now();

/** How a run enqueues: everything at once, or open-loop at a fixed rate (messages/s). */
type Load = { kind: 'burst' } | { kind: 'paced'; rate: number };

async function run(label: string, dbName: string, generator: 'engine' | 'instant', count: number, load: Load) {
  const queueName = `bench_${label.replace(/\W+/g, '_')}_${stamp}`;
  const config: AvaConfig = loadConfig(process.env, { AVA_QUEUE_NAME: queueName, AVA_DB_NAME: dbName, AVA_BATCH_SIZE: BATCH, AVA_MAX_NEW_TOKENS: '8', AVA_MODEL: process.env.AVA_MODEL || 'tiny' });
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const producer = new MessageProducer(redis, { queueName, prefix: config.queuePrefix, attempts: 8, backoffMs: 500 });
  const counters = new ReplyCounters(redis, config.queuePrefix, queueName);
  const db = await Database.connect(config.mongoUrl, dbName);
  const workers: WorkerProcess[] = Array.from({ length: WORKERS }, () =>
    spawnWorker(config, { AVA_GENERATOR: generator, AVA_INTRA_OP_THREADS: '1', AVA_LOG_LEVEL: 'info', AVA_MAX_INFLIGHT_BATCHES: '2' }),
  );
  await Promise.all(workers.map((w) => w.waitFor((l) => l.msg === 'worker ready', 120_000)));
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} replies`, stream: process.stderr }, Presets.shades_classic);
  bar.start(count, 0);
  const message = (i: number) => ({ v: 1 as const, messageId: `${queueName}-${i}`, conversationId: `c-${i % 500}`, userId: `u-${i % 97}`, text: `Message ${i}: could you tell me a story about the sea?` });
  const startedAt = new Date();
  const t0 = performance.now();
  const chunk = load.kind === 'burst' ? 1_000 : Math.max(1, Math.round(load.rate / 20));
  for (let s = 0; s < count; s += chunk) {
    if (load.kind === 'paced') {
      const due = t0 + (s / load.rate) * 1000;
      if (due > performance.now()) await sleep(due - performance.now());
    }
    await producer.enqueueMany(Array.from({ length: Math.min(chunk, count - s) }, (_, k) => message(s + k)));
  }
  let stored = 0;
  while (stored < count) {
    await sleep(100);
    const c = await counters.read();
    stored = c.replied + c.failed;
    bar.update(stored);
    if (performance.now() - t0 > 30 * 60_000) throw new Error(`only ${stored} of ${count} replies after 30 minutes`);
  }
  bar.stop();
  const docs = await db.replies.find({ createdAt: { $gte: startedAt }, _id: { $regex: `^${queueName}-` } }, { projection: { timings: 1, createdAt: 1, status: 1 } }).toArray();
  const latencies = docs.map((d) => d.createdAt.getTime() - d.timings.queuedAt.getTime());
  const first = Math.min(...docs.map((d) => d.timings.queuedAt.getTime()));
  const last = Math.max(...docs.map((d) => d.createdAt.getTime()));
  const queue = new Queue(queueName, { connection: redis, prefix: config.queuePrefix });
  const counts = await queue.getJobCounts('completed', 'failed');
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  const batches = workers.flatMap((w) => w.lines.filter((l) => l.msg === 'batch stored'));
  const generated = workers.flatMap((w) => w.lines.filter((l) => l.msg === 'batch stored')).reduce((n, l) => n + Number(l.generated), 0);
  // Mean milliseconds per batch of each step of the batch processor, from the workers' "batch stored" lines.
  const stepNames = [...new Set(batches.flatMap((b) => Object.keys((b.stepsMs as Record<string, number>) ?? {})))];
  const steps = {
    run: label,
    batches: batches.length,
    'jobs/batch': +(batches.reduce((n, b) => n + Number(b.jobs), 0) / Math.max(1, batches.length)).toFixed(1),
    ...Object.fromEntries(stepNames.map((k) => [k, +(batches.reduce((n, b) => n + Number((b.stepsMs as Record<string, number>)[k] ?? 0), 0) / Math.max(1, batches.length)).toFixed(1)])),
  };
  const result = {
    run: label,
    generator,
    load: load.kind === 'burst' ? 'all at once' : `${load.rate.toFixed(0)}/s`,
    messages: count,
    'messages/s': +(count / ((last - first) / 1000)).toFixed(1),
    'p50 latency ms': quantile(latencies, 0.5),
    'p99 latency ms': quantile(latencies, 0.99),
    replies: docs.length,
    replied: docs.filter((d) => d.status === 'replied').length,
    'generated twice': generated - docs.filter((d) => d.status === 'replied').length,
    'completed jobs': counts.completed,
    'failed jobs': counts.failed,
  };
  if (docs.length !== count || counts.completed !== count) throw new Error(`${label}: ${docs.length} replies and ${counts.completed} completed jobs for ${count} messages`);
  await queue.obliterate({ force: true });
  await queue.close();
  await producer.close();
  const leftovers = await redis.keys(`${config.queuePrefix}:${queueName}:*`);
  if (leftovers.length > 0) await redis.del(...leftovers);
  redis.disconnect();
  await db.close();
  return { result, steps };
}

async function dropDatabase(name: string) {
  const client = await MongoClient.connect(loadConfig().mongoUrl);
  await client.db(name).dropDatabase();
  await client.close();
}

const emptyDb = `bench_empty_${stamp}`;
const fullDb = `bench_full_${stamp}`;
const runs = [];
try {
  runs.push(await run('instant, empty store', emptyDb, 'instant', N, { kind: 'burst' }));
  let prefillS = 0;
  if (PREFILL > 0) {
    const db = await Database.connect(loadConfig().mongoUrl, fullDb);
    const bar = new SingleBar({ format: `pre-filling [{bar}] {value}/{total} messages`, stream: process.stderr }, Presets.shades_classic);
    bar.start(PREFILL, 0);
    const t = performance.now();
    await prefillStore(db, PREFILL, (done) => bar.update(done));
    prefillS = (performance.now() - t) / 1000;
    bar.stop();
    await db.close();
  }
  const full = await run(`instant, ${PREFILL.toLocaleString('en')} stored`, fullDb, 'instant', N, { kind: 'burst' });
  runs.push(full);
  const max = full.result['messages/s'];
  runs.push(await run(`instant, ${PREFILL.toLocaleString('en')} stored, at max rate`, fullDb, 'instant', N, { kind: 'paced', rate: max }));
  runs.push(await run(`instant, ${PREFILL.toLocaleString('en')} stored, at 50%`, fullDb, 'instant', N, { kind: 'paced', rate: max / 2 }));
  if (ENGINE_N > 0) runs.push(await run(`engine (tiny), ${PREFILL.toLocaleString('en')} stored`, fullDb, 'engine', ENGINE_N, { kind: 'burst' }));
  const rows = runs.map((r) => r.result);
  const ratio = +(full.result['messages/s'] / runs[0].result['messages/s']).toFixed(2);
  console.table(rows);
  console.log('mean ms per batch, by step of the batch processor:');
  console.table(runs.map((r) => r.steps));
  console.log(`pre-filled / empty store, instant, messages/s: ${ratio} (pre-fill of ${PREFILL} messages took ${prefillS.toFixed(1)} s)`);
  const file = await writeResult('pipeline', { benchmark: 'pipeline', machine: machine(), workers: WORKERS, batchSize: Number(BATCH), prefill: PREFILL, prefillSeconds: prefillS, rows, steps: runs.map((r) => r.steps), ratios: { prefilledOverEmpty: ratio } });
  console.log(`written ${file}`);
} finally {
  await dropDatabase(emptyDb);
  await dropDatabase(fullDb);
}
