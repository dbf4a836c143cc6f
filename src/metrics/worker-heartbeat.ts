import { rm, utimes, writeFile } from 'node:fs/promises';
import { PeriodicTask } from '../tasks/periodic-task.js';
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** What a worker publishes every few seconds. */
export interface HeartbeatRecord {
  id: string;
  host: string;
  pid: number;
  model: { id: string; revision: string };
  startedAt: string;
  lastSeen: number;
  /** Jobs in the last batch taken. */
  lastBatchSize: number;
  /** Generated tokens per second since the previous heartbeat. */
  tokensPerSecond: number;
  /** `registry.getMetricsAsJSON()`, for aggregation by the API. */
  metrics: object[];
}

/** How often workers publish; a worker not seen for three periods is not live. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
export const HEARTBEAT_STALE_MS = 3 * HEARTBEAT_INTERVAL_MS;

/** Publishes a worker's liveness, model and metrics to Redis, and removes them on stop. */
export class WorkerHeartbeat {
  // Two tasks, so that a beat waiting for an absent Redis never holds the liveness file back: the file says the
  // event loop runs, and a restart would not bring Redis back.
  private readonly fileTicks = new PeriodicTask(() => this.touch(), HEARTBEAT_INTERVAL_MS);
  private readonly beatTicks = new PeriodicTask(
    () => this.beat().catch((err: unknown) => this.log.warn({ err }, 'heartbeat failed')),
    HEARTBEAT_INTERVAL_MS,
  );
  private lastTokens = 0;
  private lastAt = Date.now();
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly id: string,
    private readonly model: { id: string; revision: string },
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    /**
     * A file whose modification time is set at every beat, for a liveness probe: it goes stale when the event loop is
     * stuck, not when Redis is away (a restart would not bring Redis back).
     */
    private readonly aliveFile?: string,
  ) {}

  /** Publishes now and every {@link HEARTBEAT_INTERVAL_MS}. */
  async start(): Promise<void> {
    await this.touch();
    await this.beat();
    this.fileTicks.start();
    this.beatTicks.start();
  }

  private async touch(): Promise<void> {
    if (!this.aliveFile) return;
    const now = new Date();
    await utimes(this.aliveFile, now, now)
      .catch(() => writeFile(this.aliveFile!, `${process.pid}\n`))
      .catch((err: unknown) => this.log.warn({ err, file: this.aliveFile }, 'writing the liveness file failed'));
  }

  /** Stops and removes this worker's entry. */
  async stop(): Promise<void> {
    await this.fileTicks.stop();
    // A beat in progress is not waited for: with Redis away it would hold the shutdown until Redis came back.
    this.beatTicks.cancel();
    if (this.aliveFile) await rm(this.aliveFile, { force: true });
    await this.redis.hdel(this.key, this.id).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const tokens = (await this.metrics.generatedTokens.get()).values[0]?.value ?? 0;
    const now = Date.now();
    const record: HeartbeatRecord = {
      id: this.id,
      host: os.hostname(),
      pid: process.pid,
      model: this.model,
      startedAt: this.startedAt,
      lastSeen: now,
      lastBatchSize: this.metrics.lastBatchSize,
      tokensPerSecond: Math.round(((tokens - this.lastTokens) / Math.max(1, now - this.lastAt)) * 1000 * 10) / 10,
      metrics: await this.metrics.registry.getMetricsAsJSON(),
    };
    this.lastTokens = tokens;
    this.lastAt = now;
    await this.redis.hset(this.key, this.id, JSON.stringify(record));
  }
}

/** Live workers' heartbeats; entries older than a minute are removed on the way. */
export async function liveWorkers(redis: Redis, key: string): Promise<HeartbeatRecord[]> {
  const all = await redis.hgetall(key);
  const now = Date.now();
  const live: HeartbeatRecord[] = [];
  for (const [id, raw] of Object.entries(all)) {
    let record: HeartbeatRecord;
    try {
      record = JSON.parse(raw) as HeartbeatRecord;
    } catch {
      await redis.hdel(key, id);
      continue;
    }
    if (now - record.lastSeen <= HEARTBEAT_STALE_MS) live.push(record);
    else if (now - record.lastSeen > 60_000) await redis.hdel(key, id);
  }
  return live;
}
