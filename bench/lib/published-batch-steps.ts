import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { liveWorkers } from '../../src/metrics/worker-heartbeat.js';

/** What the workers' metrics say of their batches: how many, their mean size, mean ms per step, generations. */
export interface BatchSteps {
  batches: number;
  jobsPerBatch: number;
  /** Mean milliseconds per batch of each step of the batch processor (a step a batch skipped counts 0). */
  msPerStep: Record<string, number>;
  /** Messages the workers ran through the model. */
  generated: number;
}

/**
 * The batch steps of `workers` live workers, from the metrics their heartbeats publish (`ava_batch_size`,
 * `ava_batch_step_seconds`, `ava_generated_messages_total`): read once every one has beaten after `since` (epoch ms),
 * so that the batches before it are all in. Call it before stopping them: a stopped worker's heartbeat is removed.
 */
export async function publishedBatchSteps(
  redis: Redis,
  heartbeatKey: string,
  workers: number,
  since: number,
  timeoutMs = 20_000,
): Promise<BatchSteps> {
  const deadline = Date.now() + timeoutMs;
  let beats = await liveWorkers(redis, heartbeatKey);
  while (beats.filter((w) => w.lastSeen > since).length < workers) {
    if (Date.now() > deadline) throw new Error(`no fresh heartbeat from ${workers} workers in ${timeoutMs} ms`);
    await sleep(250);
    beats = await liveWorkers(redis, heartbeatKey);
  }
  const metrics = (await AggregatorRegistry.aggregate(
    beats.map((w) => w.metrics as MetricObjectWithValues<MetricValue<string>>[]),
  ).getMetricsAsJSON()) as Array<MetricObjectWithValues<MetricValue<string>>>;
  // A histogram's values are its buckets, sum and count, each named by `metricName`.
  const values = (name: string) =>
    (metrics.find((m) => m.name === name)?.values ?? []) as Array<MetricValue<string> & { metricName?: string }>;
  const sampled = (name: string, suffix: '_sum' | '_count') =>
    values(name).filter((v) => v.metricName === `${name}${suffix}`);
  const batches = sampled('ava_batch_size', '_count')[0]?.value ?? 0;
  const jobs = sampled('ava_batch_size', '_sum')[0]?.value ?? 0;
  const msPerStep = Object.fromEntries(
    sampled('ava_batch_step_seconds', '_sum').map((v) => [
      String(v.labels.step),
      +((1000 * v.value) / Math.max(1, batches)).toFixed(1),
    ]),
  );
  return {
    batches,
    jobsPerBatch: +(jobs / Math.max(1, batches)).toFixed(1),
    msPerStep,
    generated: values('ava_generated_messages_total')[0]?.value ?? 0,
  };
}
