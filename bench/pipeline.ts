/**
 * `npm run bench:pipeline`: messages end to end through worker processes on the local Redis and database.
 *
 * 1. The instant generator (a fixed reply, no model: what the queue and storage cost by themselves) on an empty
 *    store, all messages enqueued at once: the baseline; then the same with AVA_ENCODER=off, for what the semantic
 *    step (the sentence encoder) costs, with AVA_ENCODER_PRECISION=fp32, for what the int8 encoder gains, and with
 *    AVA_CONVERSATION_ORDER=off, for what answering each conversation's messages in order costs (the messages go to
 *    500 conversations, so 20 each at the default 10,000).
 * 2. The same on a store pre-filled with BENCH_PREFILL messages (their replies, turns, processing records and
 *    conversations, bulk-inserted first), then again enqueued at that maximum rate and at half of it, for latency.
 * 3. The tiny model on the engine, on the pre-filled store.
 * 0. First, fair share: tenant A enqueues BENCH_MESSAGES at once while tenant B sends one a second; B's latency with
 *    fair share on and off (BENCH_PART=fair-share runs this alone).
 *
 * Prints a table of messages/s and p50/p99 enqueue-to-stored latency, the mean time of each step of a batch, and the
 * pre-filled/empty and with/without-encoder ratios; checks one reply per message; writes bench/results/pipeline-<timestamp>.json.
 * Settings: BENCH_MESSAGES (10,000), BENCH_PREFILL (0), BENCH_WORKERS (2), BENCH_BATCH_SIZE (64),
 * BENCH_ENGINE_MESSAGES (2,000; 0 skips the engine run).
 */
import { execFileSync } from 'node:child_process';
import { RedisKeys } from '../src/queue/redis-keys.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig, type AvaConfig } from '../src/config/config.js';
import { ReplyCounters } from '../src/metrics/reply-counters.js';
import { MessageProducer } from '../src/queue/message-producer.js';
import { Database } from '../src/storage/database.js';
import { spawnWorker, type WorkerProcess } from '../test/helpers/services.js';
import { dropDatabase, machine, quantile, writeResult } from './lib/bench-utils.js';
import { publishedBatchSteps } from './lib/published-batch-steps.js';
import { fairShareRuns } from './lib/fair-share-run.js';
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

/** One run's settings and what its workers logged; its replies are read once, after every run (see {@link summarize}). */
interface Run {
  label: string;
  generator: 'engine' | 'instant';
  load: Load;
  dbName: string;
  queueName: string;
  count: number;
  /** Jobs acknowledged as completed (no longer waiting, active, delayed or failed). */
  acknowledged: number;
  failedJobs: number;
  generated: number;
  /** Messages over the seconds from the first enqueue to the last reply counted. */
  wallRate: number;
  steps: Record<string, string | number>;
}

async function run(
  label: string,
  dbName: string,
  generator: 'engine' | 'instant',
  count: number,
  load: Load,
  env: Record<string, string> = {},
): Promise<Run> {
  const queueName = `bench_${label.replace(/\W+/g, '_')}_${stamp}`;
  const config: AvaConfig = loadConfig(process.env, {
    AVA_QUEUE_NAME: queueName,
    AVA_DB_NAME: dbName,
    AVA_BATCH_SIZE: BATCH,
    AVA_MAX_NEW_TOKENS: '8',
    AVA_MODEL: process.env.AVA_MODEL || 'tiny',
  });
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const keys = new RedisKeys(config.queue.prefix, queueName);
  const producer = new MessageProducer(redis, keys, {
    attempts: 8,
    backoffMs: 500,
  });
  const counters = new ReplyCounters(redis, keys);
  const workers: WorkerProcess[] = Array.from({ length: WORKERS }, () =>
    spawnWorker(config, {
      AVA_GENERATOR: generator,
      AVA_INTRA_OP_THREADS: '1',
      AVA_LOG_LEVEL: 'info',
      AVA_MAX_INFLIGHT_BATCHES: '2',
      ...env,
    }),
  );
  try {
    await Promise.all(workers.map((w) => w.waitFor((l) => l.msg === 'worker ready', 120_000)));
    process.stderr.write(`${label}: ${count} messages\n`);
    const message = (i: number) => ({
      v: 1 as const,
      messageId: `${queueName}-${i}`,
      conversationId: `c-${i % 500}`,
      userId: `u-${(i % 500) % 97}`,
      text: `Turtle ${i} swims in the sea all day`,
    });
    const t0 = performance.now();
    const chunk = load.kind === 'burst' ? 1_000 : Math.max(1, Math.round(load.rate / 20));
    for (let s = 0; s < count; s += chunk) {
      if (load.kind === 'paced') {
        const due = t0 + (s / load.rate) * 1000;
        if (due > performance.now()) await sleep(due - performance.now());
      }
      await producer.enqueueMany(Array.from({ length: Math.min(chunk, count - s) }, (_, k) => message(s + k)));
    }
    // Progress from the workers' counters in Redis: counting documents would read the whole pre-filled collection.
    for (let stored = 0; stored < count;) {
      await sleep(100);
      const c = await counters.read();
      stored = c.replied + c.failed;
      if (performance.now() - t0 > 30 * 60_000)
        throw new Error(`${label}: only ${stored} of ${count} replies after 30 minutes`);
    }
    const wallRate = count / ((performance.now() - t0) / 1000);
    const queue = new Queue(queueName, { connection: redis, prefix: config.queue.prefix });
    // Jobs are acknowledged just after their replies are stored and counted. Completed jobs are kept only up to the
    // latest 1,000, so acknowledgements are counted as the jobs no longer waiting, active or delayed.
    const unacknowledged = async () =>
      Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')).reduce(
        (a, b) => a + b,
        0,
      );
    let left = await unacknowledged();
    for (let waited = 0; left > 0 && waited < 30_000; waited += 100) {
      await sleep(100);
      left = await unacknowledged();
    }
    const { failed } = await queue.getJobCounts('failed');
    // Where the batches' time went, from the metrics the workers publish (read before they stop and leave).
    const published = await publishedBatchSteps(redis, keys.workers, WORKERS, Date.now());
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    const steps = {
      run: label,
      batches: published.batches,
      'jobs/batch': published.jobsPerBatch,
      ...published.msPerStep,
    };
    await queue.obliterate({ force: true });
    await queue.close();
    const { generated } = published;
    return {
      label,
      generator,
      load,
      dbName,
      queueName,
      count,
      acknowledged: count - left - failed,
      failedJobs: failed,
      generated,
      wallRate,
      steps,
    };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await producer.close();
    const leftovers = await redis.keys(`${config.queue.prefix}:${queueName}:*`);
    if (leftovers.length > 0) await redis.del(...leftovers);
    redis.disconnect();
  }
}

/**
 * Reads every run's replies in one query per store (on FerretDB every read is a scan of the collection, so this is
 * done once, after the measurements) and turns them into rows.
 */
async function summarize(runs: Run[]) {
  const rows = [];
  for (const dbName of [...new Set(runs.map((r) => r.dbName))]) {
    const db = await Database.connect(loadConfig().storage.url, dbName, 5_000, 3_600_000);
    const docs = await db.replies
      .find({ _id: { $regex: '^bench_' } }, { projection: { timings: 1, createdAt: 1, status: 1 } })
      .toArray();
    await db.close();
    for (const r of runs.filter((x) => x.dbName === dbName)) {
      const mine = docs.filter((d) => d._id.startsWith(`${r.queueName}-`));
      const latencies = mine.map((d) => d.createdAt.getTime() - d.timings.queuedAt.getTime());
      const first = Math.min(...mine.map((d) => d.timings.queuedAt.getTime()));
      const last = Math.max(...mine.map((d) => d.createdAt.getTime()));
      const replied = mine.filter((d) => d.status === 'replied').length;
      if (mine.length !== r.count || r.acknowledged !== r.count)
        throw new Error(
          `${r.label}: ${mine.length} replies and ${r.acknowledged} acknowledged jobs for ${r.count} messages`,
        );
      rows.push({
        run: r.label,
        generator: r.generator,
        load: r.load.kind === 'burst' ? 'all at once' : `${r.load.rate.toFixed(0)}/s`,
        messages: r.count,
        'messages/s': +(r.count / ((last - first) / 1000)).toFixed(1),
        'p50 latency ms': quantile(latencies, 0.5),
        'p99 latency ms': quantile(latencies, 0.99),
        replies: mine.length,
        replied,
        // Model passes, from the workers' metrics: a message generated again (its first pass lost) counts twice;
        // messages answered without the model (templates) not at all.
        generations: r.generated,
        'acknowledged jobs': r.acknowledged,
        'failed jobs': r.failedJobs,
      });
    }
  }
  return rows;
}

const emptyDb = `bench_empty_${stamp}`;
const fullDb = `bench_full_${stamp}`;
const runs: Run[] = [];
try {
  // Fair share: tenant B's latency while tenant A's backlog of N drains, with it on and off.
  const fairness = await fairShareRuns({ backlog: N, workers: WORKERS, batchSize: BATCH, dbName: emptyDb, stamp });
  console.table(fairness);
  if (process.env.BENCH_PART === 'fair-share') {
    console.log(
      `written ${await writeResult('pipeline-fair-share', { machine: machine(), workers: WORKERS, fairness })}`,
    );
    process.exit(0);
  }
  runs.push(await run('instant, empty store', emptyDb, 'instant', N, { kind: 'burst' }));
  // The same without the sentence encoder: what the semantic step costs per message.
  runs.push(
    await run(
      'instant, empty store, lexical only',
      emptyDb,
      'instant',
      N,
      { kind: 'burst' },
      { AVA_ENCODER: 'off', AVA_ENCODER_ZH: 'off' },
    ),
  );
  // The encoder in float32, as before int8 was the default: what the int8 encoder gains.
  runs.push(
    await run(
      'instant, empty store, fp32 encoder',
      emptyDb,
      'instant',
      N,
      { kind: 'burst' },
      { AVA_ENCODER_PRECISION: 'fp32' },
    ),
  );
  runs.push(
    await run(
      'instant, empty store, conversation order off',
      emptyDb,
      'instant',
      N,
      { kind: 'burst' },
      { AVA_CONVERSATION_ORDER: 'off' },
    ),
  );
  let prefillS = 0;
  if (PREFILL > 0) {
    const db = await Database.connect(loadConfig().storage.url, fullDb);
    const t = performance.now();
    await prefillStore(db, PREFILL, (done) => process.stderr.write(`pre-filled ${done} of ${PREFILL}\r`));
    prefillS = (performance.now() - t) / 1000;
    process.stderr.write('\n');
    await db.close();
  }
  const stored = PREFILL.toLocaleString('en');
  const full = await run(`instant, ${stored} stored`, fullDb, 'instant', N, { kind: 'burst' });
  runs.push(full);
  // The replies' timings are read after all runs; the paced runs take the maximum rate from the wall time.
  const max = full.wallRate;
  runs.push(await run(`instant, ${stored} stored, at max rate`, fullDb, 'instant', N, { kind: 'paced', rate: max }));
  runs.push(await run(`instant, ${stored} stored, at 50%`, fullDb, 'instant', N, { kind: 'paced', rate: max / 2 }));
  if (ENGINE_N > 0)
    runs.push(await run(`engine (tiny), ${stored} stored`, fullDb, 'engine', ENGINE_N, { kind: 'burst' }));
  const rows = await summarize(runs);
  const rate = (label: string) => rows.find((r) => r.run === label)!['messages/s'];
  const ratio = +(rate(full.label) / rate('instant, empty store')).toFixed(2);
  const semanticRatio = +(rate('instant, empty store') / rate('instant, empty store, lexical only')).toFixed(2);
  const orderRatio = +(rate('instant, empty store') / rate('instant, empty store, conversation order off')).toFixed(2);
  const int8Ratio = +(rate('instant, empty store') / rate('instant, empty store, fp32 encoder')).toFixed(2);
  console.table(rows);
  console.log('mean ms per batch, by step of the batch processor:');
  console.table(runs.map((r) => r.steps));
  console.log(
    `pre-filled / empty store, instant, messages/s: ${ratio} (pre-fill of ${PREFILL} messages took ${prefillS.toFixed(1)} s)`,
  );
  console.log(
    `with / without the semantic step (sentence encoder), instant, empty store, messages/s: ${semanticRatio}`,
  );
  console.log(`int8 / fp32 sentence encoder, instant, empty store, messages/s: ${int8Ratio}`);
  console.log(
    `with / without the conversation order (500 conversations, 20 messages each), instant, empty store, messages/s: ${orderRatio}`,
  );
  const file = await writeResult('pipeline', {
    benchmark: 'pipeline',
    machine: machine(),
    workers: WORKERS,
    batchSize: Number(BATCH),
    prefill: PREFILL,
    prefillSeconds: prefillS,
    rows,
    fairness,
    steps: runs.map((r) => r.steps),
    ratios: {
      prefilledOverEmpty: ratio,
      semanticOverLexical: semanticRatio,
      orderOverUnordered: orderRatio,
      int8OverFp32Encoder: int8Ratio,
    },
  });
  console.log(`written ${file}`);
} finally {
  await dropDatabase(loadConfig().storage.url, emptyDb);
  await dropDatabase(loadConfig().storage.url, fullDb);
}
