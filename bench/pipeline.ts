/**
 * `npm run bench:pipeline`: 10,000 messages through 2 worker processes, end to end on the local Redis and database,
 * first with the tiny model on the engine, then with the instant generator (what the queue and storage cost alone).
 * Reports messages/s and p50/p99 enqueue-to-stored latency, checks 10,000 replies and no duplicates, prints a table
 * and writes bench/results/pipeline-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../src/config/config.js';
import { MessageProducer } from '../src/queue/message-producer.js';
import { Database } from '../src/storage/database.js';
import { spawnWorker, type WorkerProcess } from '../test/helpers/services.js';
import { machine, quantile, writeResult } from './lib/bench-utils.js';

const N = Number(process.env.BENCH_MESSAGES || 10_000);
// Jobs per batch (AVA_BATCH_SIZE of the workers); each batch makes a fixed number of database round trips.
const WORKERS = 2;
execFileSync('bash', ['scripts/services.sh', 'up'], { stdio: 'inherit' });
const base = loadConfig();

async function run(generator: 'engine' | 'instant') {
  const names = { queueName: `bench_${generator}_${Date.now()}`, dbName: `bench_${generator}_${Date.now()}` };
  const config = loadConfig(process.env, { AVA_QUEUE_NAME: names.queueName, AVA_DB_NAME: names.dbName, AVA_BATCH_SIZE: process.env.BENCH_BATCH_SIZE || '64', AVA_MAX_NEW_TOKENS: '8', AVA_MODEL: process.env.AVA_MODEL || 'tiny' });
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const producer = new MessageProducer(redis, { queueName: config.queueName, prefix: config.queuePrefix, attempts: 8, backoffMs: 500 });
  const db = await Database.connect(config.mongoUrl, config.dbName);
  const workers: WorkerProcess[] = Array.from({ length: WORKERS }, () =>
    spawnWorker(config, { AVA_GENERATOR: generator, AVA_INTRA_OP_THREADS: '1', AVA_LOG_LEVEL: 'info', AVA_MAX_INFLIGHT_BATCHES: '2' }),
  );
  await Promise.all(workers.map((w) => w.waitFor((l) => l.msg === 'worker ready', 120_000)));
  const bar = new SingleBar({ format: `${generator} [{bar}] {value}/{total} replies`, stream: process.stderr }, Presets.shades_classic);
  bar.start(N, 0);
  const t0 = performance.now();
  for (let s = 0; s < N; s += 1000) {
    await producer.enqueueMany(Array.from({ length: Math.min(1000, N - s) }, (_, k) => ({ v: 1 as const, messageId: `b-${s + k}`, conversationId: `c-${(s + k) % 500}`, userId: `u-${(s + k) % 97}`, text: `Message ${s + k}: could you tell me a story about the sea?` })));
  }
  let stored = 0;
  while (stored < N) {
    await sleep(250);
    stored = await db.replies.countDocuments({});
    bar.update(stored);
    if (performance.now() - t0 > 20 * 60_000) throw new Error(`only ${stored} of ${N} replies after 20 minutes`);
  }
  const wallS = (performance.now() - t0) / 1000;
  bar.stop();
  const docs = await db.replies.find({}, { projection: { timings: 1, createdAt: 1, status: 1 } }).toArray();
  const latencies = docs.map((d) => d.createdAt.getTime() - d.timings.queuedAt.getTime());
  const first = Math.min(...docs.map((d) => d.timings.queuedAt.getTime()));
  const last = Math.max(...docs.map((d) => d.createdAt.getTime()));
  const queue = new Queue(config.queueName, { connection: redis, prefix: config.queuePrefix });
  const counts = await queue.getJobCounts('completed', 'failed');
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  const batches = workers.flatMap((w) => w.lines.filter((l) => l.msg === 'batch stored'));
  const generatedByWorkers = workers.map((w) => w.lines.filter((l) => l.msg === 'batch stored').reduce((n, l) => n + Number(l.generated), 0));
  // Mean milliseconds per batch of each step of the batch processor, from the workers' "batch stored" lines.
  const stepNames = [...new Set(batches.flatMap((b) => Object.keys((b.stepsMs as Record<string, number>) ?? {})))];
  const steps = {
    generator,
    batches: batches.length,
    'jobs/batch': +(batches.reduce((n, b) => n + Number(b.jobs), 0) / Math.max(1, batches.length)).toFixed(1),
    ...Object.fromEntries(stepNames.map((k) => [k, +(batches.reduce((n, b) => n + Number((b.stepsMs as Record<string, number>)[k] ?? 0), 0) / Math.max(1, batches.length)).toFixed(1)])),
  };
  const result = {
    generator,
    messages: N,
    'messages/s': +(N / ((last - first) / 1000)).toFixed(1),
    'p50 latency ms': quantile(latencies, 0.5),
    'p99 latency ms': quantile(latencies, 0.99),
    replies: docs.length,
    replied: docs.filter((d) => d.status === 'replied').length,
    duplicates: generatedByWorkers.reduce((a, b) => a + b, 0) - N,
    'completed jobs': counts.completed,
    'failed jobs': counts.failed,
    'wall s': +wallS.toFixed(1),
  };
  await queue.obliterate({ force: true });
  await queue.close();
  await producer.close();
  redis.disconnect();
  await db.close();
  const client = await MongoClient.connect(base.mongoUrl);
  await client.db(config.dbName).dropDatabase();
  await client.close();
  return { result, steps };
}

const runs = [await run('engine'), await run('instant')];
const rows = runs.map((r) => r.result);
console.table(rows);
console.log('mean ms per batch, by step of the batch processor:');
console.table(runs.map((r) => r.steps));
console.log(`written ${await writeResult('pipeline', { benchmark: 'pipeline', machine: machine(), workers: WORKERS, rows, steps: runs.map((r) => r.steps) })}`);
