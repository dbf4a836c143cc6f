import { existsSync } from 'node:fs';
import { ConfigError } from '../errors/errors.js';
import { redactUrl } from '../logging/redact.js';
import { envSchema as schema } from './env-schema.js';

/** The validated, frozen configuration. */
export interface AvaConfig {
  /** Redis URL for BullMQ (`redis://` or `rediss://` for TLS; credentials allowed). */
  readonly redisUrl: string;
  /** PEM CA file trusted for `rediss://` (a private CA); absent: the system CAs. */
  readonly redisTlsCaFile?: string;
  /** Redis Sentinel: the sentinels and the master's name; absent: `redisUrl` is the server. */
  readonly redisSentinels?: { readonly hosts: ReadonlyArray<{ host: string; port: number }>; readonly master: string };
  /** Replicas an enqueue waits for (Redis WAIT) before it is acknowledged, so a failover cannot lose it; 0: none. */
  readonly redisMinReplicas: number;
  /** Longest wait for one Redis command on the API's request paths before it answers 503, in ms. */
  readonly redisCommandTimeoutMs: number;
  /** Longest a worker's shutdown waits for its batch in flight before it drops its connections, in ms. */
  readonly shutdownGraceMs: number;
  /** Whether a worker answers the messages of one conversation in the order they were accepted (see ConversationOrder). */
  readonly conversationOrder: boolean;
  /** Redis Cluster: some of its nodes; absent: not a cluster. Needs a hash-tagged `queuePrefix`. */
  readonly redisClusterNodes?: ReadonlyArray<{ host: string; port: number }>;
  /** MongoDB connection string (official driver syntax, TLS and credentials included). */
  readonly mongoUrl: string;
  /** How long a database operation waits for a reachable server before failing (and being retried), in ms. */
  readonly mongoTimeoutMs: number;
  /** Longest wait for the database to answer on an open connection before the operation fails (and is retried), in ms. */
  readonly mongoSocketTimeoutMs: number;
  /** Database name. */
  readonly dbName: string;
  /** BullMQ queue name. */
  readonly queueName: string;
  /** BullMQ key prefix in Redis. */
  readonly queuePrefix: string;
  /** Model id: a directory, a folder under `modelsDir`, or a hub id when remote models are allowed. */
  readonly model: string;
  /** Folder of local models. */
  readonly modelsDir: string;
  /** Whether a missing model may be downloaded. */
  readonly allowRemoteModels: boolean;
  /** Hub base URL for downloads. */
  readonly hubHost: string;
  /** Most jobs per batch. */
  readonly batchSize: number;
  /** Longest wait for a batch to fill once its first job arrived, in ms. */
  readonly batchWaitMs: number;
  /** Tokens generated per reply. */
  readonly maxNewTokens: number;
  /** BullMQ job lock duration, in ms; locks are renewed at half this period. */
  readonly lockDurationMs: number;
  /** How often the stalled-job checker runs, in ms. */
  readonly stalledIntervalMs: number;
  /** Times a job may stall (its worker died) before it fails. */
  readonly maxStalledCount: number;
  /** Attempts per job for transient failures. */
  readonly jobAttempts: number;
  /** First retry delay, doubled on each attempt. */
  readonly jobBackoffMs: number;
  /** Most conversation turns kept and put into prompts. */
  readonly historyTurns: number;
  /** Most characters of conversation history kept. */
  readonly historyChars: number;
  /** A conversation silent this long loses its cached history (prompts then start without it), in s. */
  readonly historyTtlSeconds: number;
  /** Intents file (YAML): intents, examples, keywords, patterns and handlers; checked at start. */
  readonly intentsFile: string;
  /** Below this confidence a message's intent is `unknown` (answered by the model). */
  readonly intentThreshold: number;
  /** Knowledge passages put into the prompt of a `knowledge` intent; 0 turns retrieval off. */
  readonly kbTopK: number;
  /**
   * Sentence encoder for semantic recognition and retrieval: a folder, or one under `modelsDir`; `off` for lexical
   * only. A folder that does not exist means lexical only, with a warning; one that exists but cannot be loaded stops
   * the worker at start.
   */
  readonly encoder: string;
  /**
   * The encoder's linear layers: `int8` (per column, in the engine's CPU-safe integer kernel) when its embeddings stay
   * within cosine 0.99 of float32's at load, else float32 with a warning; `fp32` always float32.
   */
  readonly encoderPrecision: 'fp32' | 'int8';
  /** Similarity below which an intent example or a knowledge entry is unrelated to a message. */
  readonly semanticFloor: number;
  /** Temperature of the softmax that turns the intents' similarities into confidences. */
  readonly semanticTemperature: number;
  /** Lexical confidence from which a message's words alone decide its intent (the meaning is then not consulted). */
  readonly semanticDecisive: number;
  /** Longest passage body put into a prompt, in characters (longer ones are cut at a word boundary). */
  readonly kbPassageChars: number;
  /** How often workers check whether the knowledge base changed, in ms; 0 reads it only at start. */
  readonly kbRefreshMs: number;
  /** Longest a custom intent handler may take before its message fails with ERR_HANDLER, in ms. */
  readonly handlerTimeoutMs: number;
  /** ONNX Runtime intra-op threads; 0 lets the runtime choose. */
  readonly intraOpThreads: number;
  /** `engine` (continuous batching, default), `pipeline` (transformers.js `model.generate` per batch) or `instant` (no model; benchmarks). */
  readonly generator: 'engine' | 'pipeline' | 'instant';
  /** ONNX Runtime execution provider for the engine: `cpu` or `cuda`. */
  readonly executionProvider: 'cpu' | 'cuda';
  /** Most sequences the engine decodes together. */
  readonly engineMaxBatch: number;
  /** Precision of the engine's linear layers: float32, or int8 weights (per column) with per-token int8 activations. */
  readonly enginePrecision: 'fp32' | 'int8';
  /** The int8 engine's integer kernel: `auto` (from the CPU, proven exact at load), `u8s8` or `u8u8`. */
  readonly engineInt8Kernel: 'auto' | 'u8s8' | 'u8u8';
  /** Most cached tokens (prompt + new tokens of running sequences) in the engine. */
  readonly engineMaxCachedTokens: number;
  /** Queue batches a worker keeps in flight, so new messages join the engine while others generate. */
  readonly maxInflightBatches: number;
  /** How long a message's reply stream stays in Redis while it is generated, in s (renewed by each token). */
  readonly streamTtlSeconds: number;
  /** How long a reply stream stays in Redis once its reply is stored, in s; later readers get the stored text whole. */
  readonly streamRetainSeconds: number;
  /** How often a worker gives a stored `failed` reply to jobs that ended in BullMQ's failed set without one, in ms. */
  readonly reconcileIntervalMs: number;
  /** Writable folder for converted engine graphs; absent: `$XDG_CACHE_HOME/ava/engine` or `~/.cache/ava/engine`. */
  readonly engineCacheDir?: string;
  /**
   * Days each collection keeps a document (0: for ever): replies by `createdAt`, turns by `at`, processing records
   * by `startedAt`, conversations by `createdAt`, spoken replies and voice uploads by when they were stored.
   */
  readonly retentionDays: Readonly<{
    replies: number;
    turns: number;
    messages: number;
    conversations: number;
    audio: number;
    uploads: number;
  }>;
  /**
   * Speech recognition of voice messages: `auto` uses Whisper when its model folder exists, else pocketsphinx when
   * its library and model are installed, else none (voice messages then fail with ERR_RECOGNIZER).
   */
  readonly asr: 'auto' | 'pocketsphinx' | 'whisper' | 'off';
  /** pocketsphinx's model folder (en-us/, en-us.lm.bin, cmudict-en-us.dict). */
  readonly asrPocketsphinxModel: string;
  /** `domain`: pocketsphinx decodes with a model of the intents and knowledge base first; `general`: only its own. */
  readonly asrLanguageModel: 'domain' | 'general';
  /** Whisper's model folder (transformers.js layout); a bare name is looked up under `modelsDir`. */
  readonly asrWhisperModel: string;
  /** Largest voice upload, in bytes; larger gets 413. */
  readonly audioMaxBytes: number;
  /** Longest voice message, in seconds; longer gets a `failed` reply with ERR_AUDIO_TOO_LONG. */
  readonly audioMaxSeconds: number;
  /** How often one worker deletes what is past its retention on a database without TTL indexes (FerretDB), in ms. */
  readonly retentionSweepMs: number;
  /** A file a worker touches every 5 s (its heartbeat), for a liveness probe; absent: none. */
  readonly heartbeatFile?: string;
  /** Address the HTTP API binds to; loopback unless configured. */
  readonly apiHost: string;
  /** HTTP API port. */
  readonly apiPort: number;
  /** API bearer tokens: name, secret and scopes. */
  readonly apiTokens: ReadonlyArray<{ name: string; token: string; scopes: ReadonlyArray<'enqueue' | 'read'> }>;
  /** Requests per minute per token. */
  readonly apiRateLimit: number;
  /** Failed authentications one client address may make per minute, over every API process, before 429. */
  readonly apiAuthFailuresPerMinute: number;
  /** Largest request body, in bytes. */
  readonly apiBodyLimitBytes: number;
  /** pino log level. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Every environment variable name the configuration reads. */
export const CONFIG_VARIABLES = Object.keys(schema.shape) as Array<keyof typeof schema.shape>;

/**
 * Builds the configuration from environment variables (and optional overrides, used by tests), validates it and
 * freezes it. Fails fast with every bad variable named and a hint.
 */
export function loadConfig(
  source: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof typeof schema.shape, string>> = {},
): AvaConfig {
  const raw: Record<string, string | undefined> = {};
  for (const key of CONFIG_VARIABLES) {
    const value = overrides[key] ?? source[key];
    raw[key] = value === '' ? undefined : value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const shown = (key: string) => (key.endsWith('TOKENS') ? '[redacted]' : JSON.stringify(redactUrl(raw[key] ?? '')));
    const problems = parsed.error.issues.map((i) => `${String(i.path[0])}=${shown(String(i.path[0]))}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`, 'see the configuration table in README.md');
  }
  const e = parsed.data;
  if (e.AVA_REDIS_CLUSTER_NODES && !e.AVA_QUEUE_PREFIX.startsWith('{')) {
    throw new ConfigError(
      `invalid configuration: AVA_REDIS_CLUSTER_NODES is set but AVA_QUEUE_PREFIX=${JSON.stringify(e.AVA_QUEUE_PREFIX)} has no hash tag`,
      'set AVA_QUEUE_PREFIX={ava} (or another {tag}) so that every key of the queue is in one slot',
    );
  }
  if (e.AVA_REDIS_CLUSTER_NODES && e.AVA_REDIS_SENTINELS) {
    throw new ConfigError(
      'invalid configuration: AVA_REDIS_CLUSTER_NODES and AVA_REDIS_SENTINELS are both set',
      'a Redis deployment is either a cluster or watched by sentinels: set one',
    );
  }
  if (e.AVA_REDIS_TLS_CA_FILE && !e.AVA_REDIS_URL.startsWith('rediss://')) {
    throw new ConfigError(
      'invalid configuration: AVA_REDIS_TLS_CA_FILE is set but AVA_REDIS_URL is not rediss:// (TLS)',
      'use a rediss:// URL or unset AVA_REDIS_TLS_CA_FILE',
    );
  }
  if (e.AVA_REDIS_TLS_CA_FILE && !existsSync(e.AVA_REDIS_TLS_CA_FILE)) {
    throw new ConfigError(
      `invalid configuration: AVA_REDIS_TLS_CA_FILE=${JSON.stringify(e.AVA_REDIS_TLS_CA_FILE)}: no such file`,
      'point it at the PEM file of the CA that signed the Redis server certificate',
    );
  }
  return Object.freeze({
    redisUrl: e.AVA_REDIS_URL,
    ...(e.AVA_REDIS_TLS_CA_FILE ? { redisTlsCaFile: e.AVA_REDIS_TLS_CA_FILE } : {}),
    ...(e.AVA_REDIS_SENTINELS
      ? {
          redisSentinels: Object.freeze({
            hosts: Object.freeze(e.AVA_REDIS_SENTINELS),
            master: e.AVA_REDIS_SENTINEL_MASTER,
          }),
        }
      : {}),
    redisMinReplicas: e.AVA_REDIS_MIN_REPLICAS,
    redisCommandTimeoutMs: e.AVA_REDIS_COMMAND_TIMEOUT_MS,
    shutdownGraceMs: e.AVA_SHUTDOWN_GRACE_MS,
    conversationOrder: e.AVA_CONVERSATION_ORDER === 'on',
    ...(e.AVA_REDIS_CLUSTER_NODES ? { redisClusterNodes: Object.freeze(e.AVA_REDIS_CLUSTER_NODES) } : {}),
    mongoUrl: e.AVA_MONGO_URL,
    mongoTimeoutMs: e.AVA_MONGO_TIMEOUT_MS,
    mongoSocketTimeoutMs: e.AVA_MONGO_SOCKET_TIMEOUT_MS,
    dbName: e.AVA_DB_NAME,
    queueName: e.AVA_QUEUE_NAME,
    queuePrefix: e.AVA_QUEUE_PREFIX,
    model: e.AVA_MODEL,
    modelsDir: e.AVA_MODELS_DIR,
    allowRemoteModels: e.AVA_ALLOW_REMOTE_MODELS,
    hubHost: e.AVA_HUB_HOST,
    batchSize: e.AVA_BATCH_SIZE,
    batchWaitMs: e.AVA_BATCH_WAIT_MS,
    maxNewTokens: e.AVA_MAX_NEW_TOKENS,
    lockDurationMs: e.AVA_LOCK_DURATION_MS,
    stalledIntervalMs: e.AVA_STALLED_INTERVAL_MS,
    maxStalledCount: e.AVA_MAX_STALLED_COUNT,
    jobAttempts: e.AVA_JOB_ATTEMPTS,
    jobBackoffMs: e.AVA_JOB_BACKOFF_MS,
    historyTurns: e.AVA_HISTORY_TURNS,
    historyChars: e.AVA_HISTORY_CHARS,
    historyTtlSeconds: e.AVA_HISTORY_TTL_SECONDS,
    intentsFile: e.AVA_INTENTS_FILE,
    intentThreshold: e.AVA_INTENT_THRESHOLD,
    kbTopK: e.AVA_KB_TOP_K,
    encoder: e.AVA_ENCODER,
    encoderPrecision: e.AVA_ENCODER_PRECISION,
    semanticFloor: e.AVA_SEMANTIC_FLOOR,
    semanticTemperature: e.AVA_SEMANTIC_TEMPERATURE,
    semanticDecisive: e.AVA_SEMANTIC_DECISIVE,
    kbPassageChars: e.AVA_KB_PASSAGE_CHARS,
    kbRefreshMs: e.AVA_KB_REFRESH_MS,
    handlerTimeoutMs: e.AVA_HANDLER_TIMEOUT_MS,
    intraOpThreads: e.AVA_INTRA_OP_THREADS,
    generator: e.AVA_GENERATOR,
    executionProvider: e.AVA_EXECUTION_PROVIDER,
    engineMaxBatch: e.AVA_ENGINE_MAX_BATCH,
    enginePrecision: e.AVA_ENGINE_PRECISION,
    engineInt8Kernel: e.AVA_ENGINE_INT8_KERNEL,
    engineMaxCachedTokens: e.AVA_ENGINE_MAX_CACHED_TOKENS,
    maxInflightBatches: e.AVA_MAX_INFLIGHT_BATCHES,
    streamTtlSeconds: e.AVA_STREAM_TTL_SECONDS,
    streamRetainSeconds: e.AVA_STREAM_RETAIN_SECONDS,
    reconcileIntervalMs: e.AVA_RECONCILE_INTERVAL_MS,
    ...(e.AVA_ENGINE_CACHE_DIR ? { engineCacheDir: e.AVA_ENGINE_CACHE_DIR } : {}),
    retentionDays: Object.freeze({
      replies: e.AVA_RETENTION_REPLIES_DAYS,
      turns: e.AVA_RETENTION_TURNS_DAYS,
      messages: e.AVA_RETENTION_MESSAGES_DAYS,
      conversations: e.AVA_RETENTION_CONVERSATIONS_DAYS,
      audio: e.AVA_RETENTION_AUDIO_DAYS,
      uploads: e.AVA_RETENTION_UPLOADS_DAYS,
    }),
    asr: e.AVA_ASR,
    asrPocketsphinxModel: e.AVA_ASR_POCKETSPHINX_MODEL,
    asrLanguageModel: e.AVA_ASR_LANGUAGE_MODEL,
    asrWhisperModel: e.AVA_ASR_WHISPER_MODEL,
    audioMaxBytes: e.AVA_AUDIO_MAX_BYTES,
    audioMaxSeconds: e.AVA_AUDIO_MAX_SECONDS,
    retentionSweepMs: e.AVA_RETENTION_SWEEP_MS,
    ...(e.AVA_HEARTBEAT_FILE ? { heartbeatFile: e.AVA_HEARTBEAT_FILE } : {}),
    apiHost: e.AVA_API_HOST,
    apiPort: e.AVA_API_PORT,
    apiTokens: Object.freeze(
      e.AVA_API_TOKENS.split(',')
        .filter(Boolean)
        .map((entry) => {
          const [name, token, scopes] = entry.split(':');
          return Object.freeze({ name, token, scopes: Object.freeze(scopes.split('+') as Array<'enqueue' | 'read'>) });
        }),
    ),
    apiRateLimit: e.AVA_API_RATE_LIMIT,
    apiAuthFailuresPerMinute: e.AVA_API_AUTH_FAILURES_PER_MINUTE,
    apiBodyLimitBytes: e.AVA_API_BODY_LIMIT_BYTES,
    logLevel: e.AVA_LOG_LEVEL,
  });
}
