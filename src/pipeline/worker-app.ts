import type { AvaConfig } from '../config/config.js';
import { ServiceConnections } from '../connections/service-connections.js';
import type { TextGenerator } from '../generation/text-generator.js';
import { loadIntentCatalog } from '../intent/intent-file.js';
import type { IntentCatalog } from '../intent/intent-types.js';
import type { Logger } from '../logging/logger.js';
import { WorkerHeartbeat } from '../metrics/worker-heartbeat.js';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { FailedJobScanner } from '../queue/failed-job-scanner.js';
import { RedisKeys } from '../queue/redis-keys.js';
import { Retention } from '../storage/retention.js';
import { FailedJobReconciler } from './failed-job-reconciler.js';
import { RetentionSweeper } from './retention-sweeper.js';
import { service, Subsystems } from './subsystems.js';
import { WorkerLoop } from './worker-loop.js';
import {
  batchCollector,
  batchProcessor,
  knowledgeBase,
  loadWorkerModels,
  replyPlanner,
  workerStores,
} from './worker-parts.js';

const DAY = 86_400;

/** A running worker: its loop and the connections it owns. */
export interface WorkerApp {
  /** Stops pulling, finishes the batch in flight and closes Redis and the database (not the generator). */
  stop(): Promise<void>;
}

/**
 * Starts a worker from configuration and a loaded generator, one subsystem after another; they stop in reverse
 * order. The intents file (unless given, already loaded) and the models are checked before any connection is opened,
 * so a bad one stops the start with its reason; an unreachable Redis or database fails it with a hint.
 */
export async function startWorkerApp(
  config: AvaConfig,
  generator: TextGenerator,
  log: Logger,
  intents?: IntentCatalog,
): Promise<WorkerApp> {
  const { queue } = config;
  const catalog = intents ?? (await loadIntentCatalog(config.intents.file));
  const subsystems = new Subsystems(log, config.worker.shutdownGraceMs);
  const models = await subsystems.start(loadWorkerModels(config, log));
  const services = new ServiceConnections(config);
  const { redis, database } = await subsystems.start(connections(services));
  const stores = workerStores(config, services.keys, redis, database, log);
  const { order } = stores;
  if (order)
    await subsystems.start({
      name: 'conversation order',
      start: () => order,
      stopping: (o) => ({ stop: () => o.close() }),
    });
  const knowledge = await subsystems.start(
    service('knowledge', () => knowledgeBase(config, database, catalog, models, log)),
  );
  const metrics = new WorkerMetrics();
  const planner = await replyPlanner(config, { catalog, knowledge, database, stores, generator }, models, log);
  const { processor } = await subsystems.start(
    batchProcessor(config, { generator, planner, database, stores }, models, metrics, log),
  );
  const collector = batchCollector(config, redis, log);
  const retention = await Retention.apply(database, retentionSeconds(config.retention));
  log.info(
    {
      intents: catalog.intents.length,
      intentsFile: catalog.file,
      knowledge: knowledge.stats,
      semantic: Object.fromEntries(
        Object.entries(models.encoders).map(([language, e]) => [language, e.embedder.model]),
      ),
      retention: { days: config.retention, mode: retention.mode },
    },
    'dialogue configured',
  );
  const loopOptions = {
    lockDurationMs: queue.lockDurationMs,
    maxInflightBatches: queue.maxInflightBatches,
    whenCapacity: () => generator.whenCapacity(),
    metrics,
  };
  await subsystems.start(service('worker loop', () => new WorkerLoop(collector, processor, log, loopOptions)));
  const scanner = await subsystems.start({
    name: 'failed-job scanner',
    start: () => new FailedJobScanner(redis, stores.keys),
    stopping: (s) => ({ stop: () => s.close() }),
  });
  const lock = RedisKeys.retentionLock(config.storage.dbName);
  await subsystems.start(
    service('retention sweeper', () => new RetentionSweeper(retention, redis, lock, config.retention.sweepMs, log)),
  );
  const { replies, marks, stream, counters } = stores;
  const answered = { scanner, replies, marks, stream, metrics, counters, model: generator.model, log };
  await subsystems.start(
    service(
      'failed-job reconciler',
      () => new FailedJobReconciler({ ...answered, ...(order ? { order } : {}) }, queue.reconcileIntervalMs),
    ),
  );
  const heartbeatArgs = [redis, stores.keys.workers, collector.consumerId, generator.model, metrics, log] as const;
  await subsystems.start(
    service('heartbeat', () => new WorkerHeartbeat(...heartbeatArgs, config.worker.heartbeatFile)),
  );
  return { stop: async () => void (await subsystems.stopAll()) };
}

/** Redis and the database, opened together for a worker. */
function connections(services: ServiceConnections) {
  return {
    name: 'connections',
    start: () => services.both('worker'),
    stopping: (c: Awaited<ReturnType<ServiceConnections['both']>>) => ({
      stop: async () => void (await Promise.all([c.database.close(), c.redis.quit()])),
      // Past the grace period: jobs not acknowledged stay in Redis and come back once their locks expire.
      abort: async () => {
        c.redis.disconnect();
        await c.database.close(true);
      },
    }),
  };
}

/** Retention in seconds per collection, from the configured days. */
function retentionSeconds(days: AvaConfig['retention']) {
  return {
    replies: days.replies * DAY,
    turns: days.turns * DAY,
    messages: days.messages * DAY,
    conversations: days.conversations * DAY,
    audio: days.audio * DAY,
    uploads: days.uploads * DAY,
  };
}
