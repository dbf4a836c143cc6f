import type { Redis } from 'ioredis';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import { liveWorkers } from './worker-heartbeat.js';
import type { QueueView } from '../queue/queue-view.js';

/**
 * The API's `/metrics`: queue depth by state and live workers, measured at scrape time, merged with the sum of every
 * live worker's own metrics (batch sizes, inference time, latency, tokens, replies by status and intent, failures by
 * code) from their heartbeats.
 */
export class ApiMetrics {
  private readonly registry = new Registry();

  constructor(queue: QueueView, redis: Redis, heartbeatKey: string) {
    new Gauge({
      name: 'ava_queue_jobs',
      help: 'Jobs in the queue by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const counts = await queue.counts();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    const workerGauge = (
      name: string,
      help: string,
      pick: (w: Awaited<ReturnType<typeof liveWorkers>>[number]) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['worker'],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const w of await liveWorkers(redis, heartbeatKey)) this.set({ worker: w.id }, pick(w));
        },
      });
    new Gauge({
      name: 'ava_queue_oldest_waiting_seconds',
      help: 'Age of the oldest message not answered yet, from its enqueue (0 when none is): what autoscalers and alerts watch',
      registers: [this.registry],
      async collect() {
        const oldest = await queue.oldestUnansweredSince();
        this.set(oldest ? Math.max(0, Date.now() - oldest.getTime()) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'ava_workers_live',
      help: 'Workers whose heartbeat is fresh',
      registers: [this.registry],
      async collect() {
        this.set((await liveWorkers(redis, heartbeatKey)).length);
      },
    });
    workerGauge(
      'ava_worker_tokens_per_second',
      'Generated tokens per second of each live worker',
      (w) => w.tokensPerSecond,
    );
    workerGauge('ava_worker_last_batch_size', 'Jobs in the last batch of each live worker', (w) => w.lastBatchSize);
    this.redis = redis;
    this.key = heartbeatKey;
  }

  private readonly redis: Redis;
  private readonly key: string;

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    const workers = await liveWorkers(this.redis, this.key);
    const merged = Registry.merge([this.registry, AggregatorRegistry.aggregate(workers.map((w) => w.metrics))]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}
