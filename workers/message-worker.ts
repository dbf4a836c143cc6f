/**
 * Entry point of a message worker: wires configuration, logging, Redis, the database and the model together, then
 * runs the batch loop until SIGTERM or SIGINT. Run as many as the load needs.
 */
import { loadConfig } from '../src/config/config.js';
import { AvaError } from '../src/errors/errors.js';
import { PipelineGenerator } from '../src/generation/pipeline-generator.js';
import { createLogger } from '../src/logging/logger.js';
import { resolveModel } from '../src/models/model-resolver.js';
import { fetchModel } from '../src/models/model-fetcher.js';
import { BatchProcessor } from '../src/pipeline/batch-processor.js';
import { WorkerLoop } from '../src/pipeline/worker-loop.js';
import { BatchCollector } from '../src/queue/batch-collector.js';
import { connectRedis } from '../src/queue/redis-connection.js';
import { ConversationRepository } from '../src/storage/conversation-repository.js';
import { Database } from '../src/storage/database.js';
import { ReplyRepository } from '../src/storage/reply-repository.js';

const config = loadConfigOrExit();
const log = createLogger({ level: config.logLevel, name: 'ava-worker' });

try {
  const model = await resolveModel(config.model, {
    modelsDir: config.modelsDir,
    allowRemote: config.allowRemoteModels,
    fetch: (id, dir) => fetchModel(id, dir, { hubHost: config.hubHost }),
  });
  const [redis, database, generator] = await Promise.all([
    connectRedis(config.redisUrl),
    Database.connect(config.mongoUrl, config.dbName),
    PipelineGenerator.load({ id: model.id, dir: model.dir, intraOpThreads: config.intraOpThreads }),
  ]);
  const collector = new BatchCollector(redis, {
    queueName: config.queueName,
    prefix: config.queuePrefix,
    batchSize: config.batchSize,
    batchWaitMs: config.batchWaitMs,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    maxStalledCount: config.maxStalledCount,
  });
  collector.worker.on('error', (err) => log.error({ err }, 'queue error'));
  const processor = new BatchProcessor(generator, new ReplyRepository(database), new ConversationRepository(database, { maxTurns: config.historyTurns, maxChars: config.historyChars }), {
    maxNewTokens: config.maxNewTokens,
  });
  const loop = new WorkerLoop(collector, processor, log, config.lockDurationMs);
  await loop.start();
  log.info({ queue: config.queueName, model: generator.model, batchSize: config.batchSize }, 'worker ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing the batch in flight');
    await loop.stop();
    await Promise.all([generator.close(), database.close(), redis.quit()]);
    log.info('worker stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
} catch (err) {
  log.fatal({ err, code: err instanceof AvaError ? err.code : undefined, hint: err instanceof AvaError ? err.hint : undefined }, 'worker failed to start');
  process.exit(1);
}

function loadConfigOrExit() {
  try {
    return loadConfig();
  } catch (err) {
    process.stderr.write(`${err instanceof AvaError ? err.toLine() : String(err)}\n`);
    process.exit(1);
  }
}
