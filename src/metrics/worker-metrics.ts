import { Counter, Histogram, Registry } from 'prom-client';
import type { ReplyDocument } from '../storage/reply-document.js';

/**
 * A worker's Prometheus metrics. Workers have no HTTP port: they publish these with their heartbeat, and the API's
 * `/metrics` aggregates every live worker's (see {@link WorkerHeartbeat}).
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly batchSize = new Histogram({
    name: 'ava_batch_size',
    help: 'Jobs per batch taken from the queue',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly inferenceSeconds = new Histogram({
    name: 'ava_inference_seconds',
    help: "Wall time of a batch's generation",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly latencySeconds = new Histogram({
    name: 'ava_enqueue_to_stored_seconds',
    help: 'From enqueue to the reply being stored',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly generatedTokens = new Counter({
    name: 'ava_generated_tokens_total',
    help: 'Tokens generated',
    registers: [this.registry],
  });
  readonly replies = new Counter({
    name: 'ava_replies_total',
    help: 'Replies stored, by status and intent',
    labelNames: ['status', 'intent'],
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'ava_failures_total',
    help: 'Failed messages and batches, by error code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly recognitionSeconds = new Histogram({
    name: 'ava_recognition_seconds',
    help: 'Speech recognition time of a voice message, by engine',
    labelNames: ['engine'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly heardSeconds = new Counter({
    name: 'ava_heard_audio_seconds_total',
    help: 'Seconds of voice messages transcribed, by engine (recognition seconds over these: the real-time factor)',
    labelNames: ['engine'],
    registers: [this.registry],
  });

  readonly stepSeconds = new Histogram({
    name: 'ava_batch_step_seconds',
    help: 'Time a batch spent in each step of the batch processor (reads and writes, planning, generation)',
    labelNames: ['step'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly generations = new Counter({
    name: 'ava_generated_messages_total',
    help: 'Messages run through the model, each pass counted (a message generated again after a crash counts twice)',
    registers: [this.registry],
  });

  /** Jobs in the last batch recorded, for the heartbeat. */
  lastBatchSize = 0;

  /**
   * Records one settled batch: its jobs, the milliseconds of each step (`generate` is the inference), the messages it
   * ran through the model, and the replies it stored.
   */
  recordBatch(
    jobs: number,
    stepsMs: Readonly<Record<string, number>>,
    generated: number,
    stored: readonly ReplyDocument[],
  ): void {
    this.lastBatchSize = jobs;
    this.batchSize.observe(jobs);
    this.inferenceSeconds.observe((stepsMs.generate ?? 0) / 1000);
    for (const [step, ms] of Object.entries(stepsMs)) this.stepSeconds.observe({ step }, ms / 1000);
    this.generations.inc(generated);
    for (const doc of stored) {
      this.replies.inc({ status: doc.status, intent: doc.intent ?? 'none' });
      if (doc.status === 'failed') this.failures.inc({ code: doc.error.code });
      this.generatedTokens.inc(doc.tokens.generated);
      this.latencySeconds.observe(Math.max(0, doc.createdAt.getTime() - doc.timings.queuedAt.getTime()) / 1000);
      if (doc.transcript) {
        this.recognitionSeconds.observe({ engine: doc.transcript.engine }, doc.transcript.ms / 1000);
        this.heardSeconds.inc({ engine: doc.transcript.engine }, doc.transcript.audioSeconds);
      }
    }
  }
}
