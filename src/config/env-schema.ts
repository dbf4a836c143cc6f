import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** `host:port[,host:port…]`, read into a list. */
const hostPorts = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'must be host:port[,host:port…]')
  .transform((list) =>
    list
      .split(',')
      .map((h) =>
        Object.freeze({ host: h.slice(0, h.lastIndexOf(':')), port: Number(h.slice(h.lastIndexOf(':') + 1)) }),
      ),
  );

/**
 * Every option, its environment variable and its default, in one place. README's configuration table mirrors it.
 * Keys are environment variable names.
 */
export const envSchema = z.object({
  AVA_REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  AVA_REDIS_TLS_CA_FILE: z.string().min(1).optional(),
  AVA_REDIS_SENTINELS: hostPorts.optional(),
  AVA_REDIS_SENTINEL_MASTER: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .default('mymaster'),
  AVA_REDIS_MIN_REPLICAS: int(0, 10).default(0),
  AVA_REDIS_COMMAND_TIMEOUT_MS: int(100, 60_000).default(2_000),
  AVA_REDIS_CLUSTER_NODES: hostPorts.optional(),
  AVA_MONGO_URL: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .default('mongodb://127.0.0.1:27017'),
  AVA_MONGO_TIMEOUT_MS: int(100, 120_000).default(5_000),
  AVA_MONGO_SOCKET_TIMEOUT_MS: int(1_000, 600_000).default(30_000),
  AVA_DB_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,38}$/, 'letters, digits, _ and - only, at most 38 characters')
    .default('ava'),
  AVA_QUEUE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only')
    .default('ava-messages'),
  AVA_QUEUE_PREFIX: z
    .string()
    .regex(
      /^(\{[A-Za-z0-9_-]{1,30}\}|[A-Za-z0-9_-]{1,32})$/,
      'letters, digits, _ and - only, or a Redis Cluster hash tag such as {ava}',
    )
    .default('bull'),
  AVA_MODEL: z.string().min(1).default('tiny'),
  AVA_MODELS_DIR: z.string().min(1).default('models'),
  AVA_ALLOW_REMOTE_MODELS: bool.default(false),
  AVA_HUB_HOST: z.string().url().default('https://huggingface.co/'),
  AVA_BATCH_SIZE: int(1, 256).default(16),
  AVA_BATCH_WAIT_MS: int(0, 10_000).default(20),
  AVA_MAX_NEW_TOKENS: int(1, 512).default(32),
  AVA_LOCK_DURATION_MS: int(5_000, 600_000).default(30_000),
  AVA_STALLED_INTERVAL_MS: int(1_000, 600_000).default(15_000),
  AVA_SHUTDOWN_GRACE_MS: int(1_000, 600_000).default(25_000),
  AVA_CONVERSATION_ORDER: z.enum(['on', 'off']).default('on'),
  AVA_MAX_STALLED_COUNT: int(0, 100).default(3),
  AVA_JOB_ATTEMPTS: int(1, 100).default(8),
  AVA_JOB_BACKOFF_MS: int(10, 600_000).default(1_000),
  AVA_HISTORY_TURNS: int(0, 100).default(6),
  AVA_HISTORY_CHARS: int(0, 100_000).default(2_000),
  AVA_HISTORY_TTL_SECONDS: int(60, 31_536_000).default(86_400),
  AVA_INTENTS_FILE: z.string().min(1).default('config/intents.yaml'),
  AVA_INTENT_THRESHOLD: z.coerce.number().min(0).max(1).default(0.25),
  AVA_KB_TOP_K: int(0, 20).default(3),
  AVA_ENCODER: z.string().min(1).default('all-MiniLM-L6-v2'),
  AVA_ENCODER_PRECISION: z.enum(['fp32', 'int8']).default('int8'),
  AVA_SEMANTIC_FLOOR: z.coerce.number().min(-1).max(1).default(0.3),
  AVA_SEMANTIC_TEMPERATURE: z.coerce.number().gt(0).max(1).default(0.03),
  AVA_SEMANTIC_DECISIVE: z.coerce.number().min(0).max(1.01).default(0.5),
  AVA_KB_PASSAGE_CHARS: int(50, 20_000).default(600),
  AVA_KB_REFRESH_MS: int(0, 3_600_000).default(5_000),
  AVA_HANDLER_TIMEOUT_MS: int(10, 120_000).default(5_000),
  AVA_INTRA_OP_THREADS: int(0, 256).default(0),
  AVA_GENERATOR: z.enum(['engine', 'pipeline', 'instant']).default('engine'),
  AVA_EXECUTION_PROVIDER: z.enum(['cpu', 'cuda']).default('cpu'),
  AVA_ENGINE_MAX_BATCH: int(1, 1024).default(32),
  AVA_ENGINE_PRECISION: z.enum(['fp32', 'int8']).default('fp32'),
  AVA_ENGINE_INT8_KERNEL: z.enum(['auto', 'u8s8', 'u8u8']).default('auto'),
  AVA_ENGINE_MAX_CACHED_TOKENS: int(64, 10_000_000).default(32_768),
  AVA_MAX_INFLIGHT_BATCHES: int(1, 64).default(2),
  AVA_STREAM_TTL_SECONDS: int(10, 86_400).default(600),
  AVA_STREAM_RETAIN_SECONDS: int(1, 86_400).default(300),
  AVA_RECONCILE_INTERVAL_MS: int(100, 3_600_000).default(10_000),
  AVA_ENGINE_CACHE_DIR: z.string().min(1).optional(),
  AVA_RETENTION_REPLIES_DAYS: int(0, 36_500).default(0),
  AVA_RETENTION_TURNS_DAYS: int(0, 36_500).default(30),
  AVA_RETENTION_MESSAGES_DAYS: int(0, 36_500).default(7),
  AVA_RETENTION_CONVERSATIONS_DAYS: int(0, 36_500).default(90),
  AVA_RETENTION_AUDIO_DAYS: int(0, 36_500).default(7),
  AVA_RETENTION_UPLOADS_DAYS: int(0, 36_500).default(7),
  AVA_RETENTION_SWEEP_MS: int(1_000, 86_400_000).default(3_600_000),
  AVA_ASR: z.enum(['auto', 'pocketsphinx', 'whisper', 'off']).default('auto'),
  AVA_ASR_POCKETSPHINX_MODEL: z.string().min(1).default('/usr/share/pocketsphinx/model/en-us'),
  AVA_ASR_LANGUAGE_MODEL: z.enum(['domain', 'general']).default('domain'),
  AVA_ASR_WHISPER_MODEL: z.string().min(1).default('whisper'),
  AVA_AUDIO_MAX_BYTES: int(1024, 100 * 1024 * 1024).default(10 * 1024 * 1024),
  AVA_AUDIO_MAX_SECONDS: int(1, 3_600).default(60),
  AVA_HEARTBEAT_FILE: z.string().min(1).optional(),
  AVA_API_HOST: z.string().min(1).default('127.0.0.1'),
  AVA_API_PORT: int(0, 65535).default(8080),
  AVA_API_TOKENS: z
    .string()
    .regex(
      /^$|^([A-Za-z0-9_-]+:[A-Za-z0-9._~+/=-]{16,}:(enqueue|read)(\+(enqueue|read))*)(,[A-Za-z0-9_-]+:[A-Za-z0-9._~+/=-]{16,}:(enqueue|read)(\+(enqueue|read))*)*$/,
      'must be name:token:scopes[,…] with tokens of at least 16 characters and scopes enqueue and/or read joined by +',
    )
    .default(''),
  AVA_API_RATE_LIMIT: int(1, 1_000_000).default(600),
  AVA_API_AUTH_FAILURES_PER_MINUTE: int(1, 1_000_000).default(30),
  AVA_API_BODY_LIMIT_BYTES: int(1024, 256 * 1024 * 1024).default(16 * 1024 * 1024),
  AVA_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
