import type { Redis } from 'ioredis';
import type { AvaConfig } from '../config/config.js';
import type { TextGenerator } from '../generation/text-generator.js';
import type { Logger } from '../logging/logger.js';
import { BatchCollector } from '../queue/batch-collector.js';
import { connectRedis, redisTargetOf } from '../queue/redis-connection.js';
import { ReplyStreamPublisher } from '../queue/reply-stream.js';
import { StoredReplyMarks } from '../queue/stored-reply-marks.js';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { ReplyCounters } from '../metrics/reply-counters.js';
import { WorkerHeartbeat } from '../metrics/worker-heartbeat.js';
import { RedisKeys } from '../queue/redis-keys.js';
import { ConversationOrder } from '../queue/conversation-order.js';
import { ConversationRepository } from '../storage/conversation-repository.js';
import { Database } from '../storage/database.js';
import { ReplyRepository } from '../storage/reply-repository.js';
import { BatchProcessor } from './batch-processor.js';
import { WorkerLoop } from './worker-loop.js';
import { DialogueState } from '../conversation/dialogue-state.js';
import { ReplyPlanner } from '../conversation/reply-planner.js';
import { loadIntentCatalog } from '../intent/intent-file.js';
import type { IntentCatalog } from '../intent/intent-types.js';
import { KnowledgeBase } from '../knowledge/knowledge-base.js';
import { KnowledgeRepository } from '../storage/knowledge-repository.js';
import { MessageStateRepository } from '../storage/message-state-repository.js';
import { RecentTurnsCache } from '../storage/recent-turns-cache.js';
import { FailedJobScanner } from '../queue/failed-job-scanner.js';
import { FailedJobReconciler } from './failed-job-reconciler.js';
import { Retention } from '../storage/retention.js';
import { RetentionSweeper } from './retention-sweeper.js';
import { loadEncoder } from '../embedding/load-encoder.js';
import { embedExamples } from '../intent/semantic-examples.js';
import { SpeechRepository } from '../storage/speech-repository.js';
import { SpeechSynthesizer } from '../voice/speech-synthesizer.js';
import { SpeechCache } from '../voice/speech-cache.js';
import { AudioTranscoder } from '../voice/audio-transcoder.js';
import { ReplySpeaker } from './reply-speaker.js';
import { loadRecognizers } from '../voice/load-recognizers.js';
import type { SpeechRecognizer } from '../voice/speech-recognizer.js';
import { AudioDecoder } from '../voice/audio-decoder.js';
import { UploadRepository } from '../storage/upload-repository.js';
import { MessageTranscriber } from './message-transcriber.js';
import { domainSentences } from './domain-sentences.js';

const DAY = 86_400;

/** A running worker: its loop and the connections it owns. */
export interface WorkerApp {
  /** Stops pulling, finishes the batch in flight and closes Redis and the database (not the generator). */
  stop(): Promise<void>;
}

/**
 * Wires a worker from configuration and a loaded generator: loads the intents file (unless given, already loaded),
 * connects Redis and the database (failing fast with a hint when either is unreachable), builds the knowledge base
 * and the batch pipeline, and starts the loop.
 */
export async function startWorkerApp(
  config: AvaConfig,
  generator: TextGenerator,
  log: Logger,
  intents?: IntentCatalog,
): Promise<WorkerApp> {
  // The intents file is checked before any connection is opened: a bad one stops the start with file, line and reason.
  const catalog = intents ?? (await loadIntentCatalog(config.intents.file));
  // A sentence encoder that exists but cannot be loaded stops the start here, before any connection is opened.
  const encoder = await loadEncoder(config, log);
  const semantics = encoder && {
    embedder: encoder.encoder,
    examples: await embedExamples(catalog.intents, encoder.embedder),
    floor: config.semantic.floor,
    temperature: config.semantic.temperature,
    decisive: config.semantic.decisive,
    log,
  };
  const recognizers = await loadRecognizers(config, log).catch(async (err: unknown) => {
    await encoder?.close();
    throw err;
  });
  const closeModels = async () => {
    await encoder?.close();
    await Promise.all(recognizers.map((r) => r.close()));
  };
  const { redis, database } = await openConnections(config).catch(async (err: unknown) => {
    await closeModels();
    throw err;
  });
  const keys = new RedisKeys(config.queue.prefix, config.queue.name);
  const history = new RecentTurnsCache(redis, {
    keysOf: (id) => keys.history(id),
    maxTurns: config.history.turns,
    ttlSeconds: config.history.ttlSeconds,
  });
  const conversations = new ConversationRepository(
    database,
    { maxTurns: config.history.turns, maxChars: config.history.chars },
    history,
  );
  const knowledge = new KnowledgeBase(
    new KnowledgeRepository(database),
    {
      refreshMs: config.knowledge.refreshMs,
      ...(encoder ? { semantic: { embedder: encoder.embedder, floor: config.semantic.floor } } : {}),
      onRebuild: (entries) => useDomainText(recognizers, domainSentences(catalog, entries), log),
    },
    log,
  );
  try {
    // The first index is built before any job is taken; a database that cannot be read stops the start.
    await knowledge.start();
  } catch (err) {
    redis.disconnect();
    await database.close();
    await closeModels();
    throw err;
  }
  const collector = new BatchCollector(redis, {
    queueName: config.queue.name,
    prefix: config.queue.prefix,
    batchSize: config.queue.batchSize,
    batchWaitMs: config.queue.batchWaitMs,
    lockDurationMs: config.queue.lockDurationMs,
    stalledIntervalMs: config.queue.stalledIntervalMs,
    maxStalledCount: config.queue.maxStalledCount,
  });
  collector.onError((err) => log.error({ err }, 'queue error'));
  const metrics = new WorkerMetrics();
  const planner = new ReplyPlanner(
    catalog,
    {
      intentThreshold: config.intents.threshold,
      kbTopK: config.knowledge.topK,
      kbPassageChars: config.knowledge.passageChars,
      handlerTimeoutMs: config.intents.handlerTimeoutMs,
    },
    knowledge,
    new DialogueState(database, conversations),
    semantics,
  );
  const replies = new ReplyRepository(database);
  const stream = new ReplyStreamPublisher(
    redis,
    config.queue.prefix,
    config.queue.name,
    { liveSeconds: config.stream.ttlSeconds, retainSeconds: config.stream.retainSeconds },
    log,
  );
  const counters = new ReplyCounters(redis, config.queue.prefix, config.queue.name);
  const marks = new StoredReplyMarks(redis, keys);
  const order = config.queue.conversationOrder ? new ConversationOrder(redis, keys) : undefined;
  const speaker = new ReplySpeaker(
    new SpeechCache(new SpeechRepository(database), new SpeechSynthesizer(), new AudioTranscoder()),
    log,
  );
  const transcriber = new MessageTranscriber({
    uploads: new UploadRepository(database),
    decoder: new AudioDecoder({ maxSeconds: config.voice.maxSeconds }),
    recognizers,
    log,
  });
  const processor = new BatchProcessor(
    {
      generator,
      replies,
      conversations,
      states: new MessageStateRepository(database),
      planner,
      stream,
      metrics,
      counters,
      marks,
      speaker,
      transcriber,
      ...(order ? { order } : {}),
    },
    { maxNewTokens: config.engine.maxNewTokens },
  );
  const days = config.retention;
  const retention = await Retention.apply(database, {
    replies: days.replies * DAY,
    turns: days.turns * DAY,
    messages: days.messages * DAY,
    conversations: days.conversations * DAY,
    audio: days.audio * DAY,
    uploads: days.uploads * DAY,
  });
  const sweeper = new RetentionSweeper(
    retention,
    redis,
    RedisKeys.retentionLock(config.storage.dbName),
    config.retention.sweepMs,
    log,
  );
  const scanner = new FailedJobScanner(redis, config.queue.name, config.queue.prefix);
  const reconciler = new FailedJobReconciler(
    { scanner, replies, marks, stream, metrics, counters, model: generator.model, log, ...(order ? { order } : {}) },
    config.queue.reconcileIntervalMs,
  );
  log.info(
    {
      intents: catalog.intents.length,
      intentsFile: catalog.file,
      knowledge: knowledge.stats,
      semantic: encoder ? encoder.embedder.model : 'off',
      retention: { days, mode: retention.mode },
    },
    'dialogue configured',
  );
  const loop = new WorkerLoop(collector, processor, log, {
    lockDurationMs: config.queue.lockDurationMs,
    maxInflightBatches: config.queue.maxInflightBatches,
    whenCapacity: () => generator.whenCapacity(),
    metrics,
  });
  await loop.start();
  reconciler.start();
  sweeper.start();
  const heartbeat = new WorkerHeartbeat(
    redis,
    keys.workers,
    collector.consumerId,
    generator.model,
    metrics,
    log,
    config.worker.heartbeatFile,
  );
  await heartbeat.start();
  const graceful = async () => {
    await heartbeat.stop();
    await reconciler.stop();
    await sweeper.stop();
    await scanner.close();
    await loop.stop();
    await speaker.idle();
    await knowledge.stop();
    await order?.close();
    await Promise.all([database.close(), redis.quit()]);
  };
  return {
    async stop() {
      // With Redis or the database away, the batch in flight cannot be stored or acknowledged and the graceful steps
      // would wait for them forever. After the grace period the connections are dropped instead: the jobs not
      // acknowledged stay in Redis and are delivered again once their locks expire, and stored replies are kept.
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>(
        (resolve) => (timer = setTimeout(() => resolve('expired'), config.worker.shutdownGraceMs)),
      );
      const done = graceful().then(() => 'done' as const);
      const outcome = await Promise.race([done, expired]);
      clearTimeout(timer);
      if (outcome === 'expired') {
        log.error(
          { graceMs: config.worker.shutdownGraceMs },
          'shutdown grace period passed with work unfinished (Redis or the database not answering); dropping the connections',
        );
        done.catch((err: unknown) =>
          log.warn({ err }, 'an unfinished shutdown step failed once its connection was dropped'),
        );
        redis.disconnect();
        await database.close(true);
      }
      await closeModels();
    },
  };
}

/** Opens Redis and the database together; if either fails, the one that opened is closed and the error thrown. */
async function openConnections(config: AvaConfig): Promise<{ redis: Redis; database: Database }> {
  const [redis, database] = await Promise.allSettled([
    connectRedis(redisTargetOf(config.redis)),
    Database.connect(
      config.storage.url,
      config.storage.dbName,
      config.storage.timeoutMs,
      config.storage.socketTimeoutMs,
    ),
  ]);
  if (redis.status === 'fulfilled' && database.status === 'fulfilled')
    return { redis: redis.value, database: database.value };
  if (redis.status === 'fulfilled') redis.value.disconnect();
  if (database.status === 'fulfilled') await database.value.close();
  throw redis.status === 'rejected' ? redis.reason : (database as PromiseRejectedResult).reason;
}

/**
 * Gives the recognisers the domain's text after each knowledge rebuild. A model that cannot be built is logged and
 * the previous one kept: recognition goes on, only less tuned to the new entries.
 */
async function useDomainText(
  recognizers: readonly SpeechRecognizer[],
  sentences: readonly string[],
  log: Logger,
): Promise<void> {
  for (const r of recognizers) {
    try {
      await r.useDomainText?.(sentences);
    } catch (err) {
      log.warn({ err, engine: r.engine }, 'domain language model not rebuilt; keeping the previous one');
    }
  }
}
