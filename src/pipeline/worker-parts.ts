import type { Redis } from 'ioredis';
import type { AvaConfig } from '../config/config.js';
import { DialogueState } from '../conversation/dialogue-state.js';
import { ReplyPlanner } from '../conversation/reply-planner.js';
import { loadEncoders, type LanguageEncoders } from '../embedding/load-encoder.js';
import type { TextGenerator } from '../generation/text-generator.js';
import { plannerSemantics, type SemanticCalibration } from '../conversation/planner-semantics.js';
import type { Language } from '../language/search-terms.js';
import type { IntentCatalog } from '../intent/intent-types.js';
import { KnowledgeBase } from '../knowledge/knowledge-base.js';
import type { Logger } from '../logging/logger.js';
import { ReplyCounters } from '../metrics/reply-counters.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import { BatchCollector } from '../queue/batch-collector.js';
import { ConversationOrder } from '../queue/conversation-order.js';
import type { RedisKeys } from '../queue/redis-keys.js';
import { ReplyStreamPublisher } from '../queue/reply-stream.js';
import { StoredReplyMarks } from '../queue/stored-reply-marks.js';
import { ConversationRepository } from '../storage/conversation-repository.js';
import type { Database } from '../storage/database.js';
import { KnowledgeRepository } from '../storage/knowledge-repository.js';
import { MessageStateRepository } from '../storage/message-state-repository.js';
import { RecentTurnsCache } from '../storage/recent-turns-cache.js';
import { ReplyRepository } from '../storage/reply-repository.js';
import { SpeechRepository } from '../storage/speech-repository.js';
import { UploadRepository } from '../storage/upload-repository.js';
import { AudioDecoder } from '../voice/audio-decoder.js';
import { AudioTranscoder } from '../voice/audio-transcoder.js';
import { loadRecognizers } from '../voice/load-recognizers.js';
import { SpeechCache } from '../voice/speech-cache.js';
import type { SpeechRecognizer } from '../voice/speech-recognizer.js';
import { synthesizerFor } from '../voice/speech-synthesizer.js';
import { BatchProcessor } from './batch-processor.js';
import { domainSentences } from './domain-sentences.js';
import { MessageTranscriber } from './message-transcriber.js';
import { ReplySpeaker } from './reply-speaker.js';
import type { Subsystem } from './subsystems.js';

/** The models a worker loads beside its generator: the sentence encoders (optional) and the speech recognisers. */
export interface WorkerModels {
  encoders: LanguageEncoders;
  recognizers: SpeechRecognizer[];
  close(): Promise<void>;
}

/** The encoder and the recognisers; a model that exists but cannot be loaded throws (and closes the other). */
export function loadWorkerModels(config: AvaConfig, log: Logger): Subsystem<WorkerModels> {
  return {
    name: 'models',
    start: async () => {
      const encoders = await loadEncoders(config, log);
      const closeEncoders = () => Promise.all(Object.values(encoders).map((e) => e.close()));
      const recognizers = await loadRecognizers(config, log).catch(async (err: unknown) => {
        await closeEncoders();
        throw err;
      });
      const close = async () => {
        await closeEncoders();
        await Promise.all(recognizers.map((r) => r.close()));
      };
      return { encoders, recognizers, close };
    },
    stopping: (models) => ({ stop: models.close, abort: models.close }),
  };
}

/** The queue's batch collector (BullMQ), its errors logged. */
export function batchCollector(config: AvaConfig, redis: Redis, log: Logger): BatchCollector {
  const { queue } = config;
  const collector = new BatchCollector(redis, {
    queueName: queue.name,
    prefix: queue.prefix,
    batchSize: queue.batchSize,
    batchWaitMs: queue.batchWaitMs,
    lockDurationMs: queue.lockDurationMs,
    stalledIntervalMs: queue.stalledIntervalMs,
    maxStalledCount: queue.maxStalledCount,
  });
  collector.onError((err) => log.error({ err }, 'queue error'));
  return collector;
}

/** The stores the batch pipeline and the dialogue share. */
export interface WorkerStores {
  keys: RedisKeys;
  conversations: ConversationRepository;
  replies: ReplyRepository;
  marks: StoredReplyMarks;
  stream: ReplyStreamPublisher;
  counters: ReplyCounters;
  order: ConversationOrder | undefined;
}

/** The repositories, caches and Redis structures of one queue. */
export function workerStores(
  config: AvaConfig,
  keys: RedisKeys,
  redis: Redis,
  database: Database,
  log: Logger,
): WorkerStores {
  const { queue, history, stream } = config;
  const cache = new RecentTurnsCache(redis, {
    keysOf: (id) => keys.history(id),
    maxTurns: history.turns,
    ttlSeconds: history.ttlSeconds,
  });
  return {
    keys,
    conversations: new ConversationRepository(database, { maxTurns: history.turns, maxChars: history.chars }, cache),
    replies: new ReplyRepository(database),
    marks: new StoredReplyMarks(redis, keys),
    stream: new ReplyStreamPublisher(
      redis,
      keys,
      { liveSeconds: stream.ttlSeconds, retainSeconds: stream.retainSeconds },
      log,
    ),
    counters: new ReplyCounters(redis, keys),
    order: queue.conversationOrder ? new ConversationOrder(redis, keys) : undefined,
  };
}

/** The knowledge base, which tells the recognisers the domain's words at each rebuild. */
export function knowledgeBase(
  config: AvaConfig,
  database: Database,
  catalog: IntentCatalog,
  models: WorkerModels,
  log: Logger,
): KnowledgeBase {
  const { encoders, recognizers } = models;
  const floors = semanticCalibration(config).floor;
  return new KnowledgeBase(
    new KnowledgeRepository(database),
    {
      refreshMs: config.knowledge.refreshMs,
      semantic: Object.fromEntries(
        Object.entries(encoders).map(([language, e]) => [
          language,
          { embedder: e.embedder, floor: floors[language as Language] },
        ]),
      ),
      onRebuild: (entries) => useDomainText(recognizers, domainSentences(catalog, entries), log),
    },
    log,
  );
}

/** The reply planner: intents (by words, and by meaning when the encoder is loaded), knowledge and dialogue state. */
export async function replyPlanner(
  config: AvaConfig,
  parts: {
    catalog: IntentCatalog;
    knowledge: KnowledgeBase;
    database: Database;
    stores: WorkerStores;
    generator: TextGenerator;
  },
  models: WorkerModels,
  log: Logger,
): Promise<ReplyPlanner> {
  const { intents, knowledge } = config;
  const semantics = await plannerSemantics(parts.catalog, models.encoders, semanticCalibration(config), log);
  return new ReplyPlanner(
    parts.catalog,
    {
      intentThreshold: intents.threshold,
      kbTopK: knowledge.topK,
      kbPassageChars: knowledge.passageChars,
      handlerTimeoutMs: intents.handlerTimeoutMs,
      ...(parts.generator.tokenizer.languages ? { modelLanguages: parts.generator.tokenizer.languages } : {}),
    },
    parts.knowledge,
    new DialogueState(parts.database, parts.stores.conversations),
    semantics,
  );
}

/** The configured calibration of recognition by meaning. */
export function semanticCalibration(config: AvaConfig): SemanticCalibration {
  const { semantic } = config;
  return {
    floor: { en: semantic.floor, zh: semantic.zhFloor },
    margin: { en: semantic.margin, zh: semantic.zhMargin },
    temperature: semantic.temperature,
    decisive: semantic.decisive,
  };
}

/** The batch pipeline (transcription, planning, generation, storage, speech); it stops once its speech is done. */
export function batchProcessor(
  config: AvaConfig,
  parts: { generator: TextGenerator; planner: ReplyPlanner; database: Database; stores: WorkerStores },
  models: WorkerModels,
  metrics: WorkerMetrics,
  log: Logger,
): Subsystem<{ processor: BatchProcessor; speaker: ReplySpeaker }> {
  return {
    name: 'batch pipeline',
    start: () => buildProcessor(config, parts, models, metrics, log),
    stopping: ({ speaker }) => ({ stop: () => speaker.idle() }),
  };
}

function buildProcessor(
  config: AvaConfig,
  parts: { generator: TextGenerator; planner: ReplyPlanner; database: Database; stores: WorkerStores },
  models: WorkerModels,
  metrics: WorkerMetrics,
  log: Logger,
): { processor: BatchProcessor; speaker: ReplySpeaker } {
  const { database, stores } = parts;
  const speaker = new ReplySpeaker(
    new SpeechCache(new SpeechRepository(database), synthesizerFor(config), new AudioTranscoder()),
    log,
  );
  const { voice } = config;
  const transcriber = new MessageTranscriber({
    uploads: new UploadRepository(database),
    decoder: new AudioDecoder({ maxSeconds: voice.maxSeconds }),
    recognizers: models.recognizers,
    log,
    preparation: { noiseFloorDb: voice.noiseFloorDb },
    parallel: voice.decoders,
    rescore: {
      confidences: (texts) => parts.planner.intentConfidences(texts),
      // Each engine's log scores have their own scale, so each has its own weight.
      weights: { pocketsphinx: voice.meaningWeight, whisper: voice.whisperMeaningWeight },
    },
  });
  const processor = new BatchProcessor(
    {
      generator: parts.generator,
      replies: stores.replies,
      conversations: stores.conversations,
      states: new MessageStateRepository(database),
      planner: parts.planner,
      stream: stores.stream,
      metrics,
      counters: stores.counters,
      marks: stores.marks,
      speaker,
      transcriber,
      ...(stores.order ? { order: stores.order } : {}),
    },
    { maxNewTokens: config.engine.maxNewTokens },
  );
  return { processor, speaker };
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
