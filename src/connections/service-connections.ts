import type { Redis } from 'ioredis';
import { RedisKeys } from '../queue/redis-keys.js';
import type { AvaConfig } from '../config/config.js';
import { MessageProducer } from '../queue/message-producer.js';
import { connectRedis, redisTargetOf, requestPathRedisOptions } from '../queue/redis-connection.js';
import { Database, isDatabaseUnavailable } from '../storage/database.js';
import { ReplyRepository } from '../storage/reply-repository.js';

/**
 * What a connection serves. `worker`: blocking commands that outlive a Redis restart (BullMQ's options; commands
 * wait for the connection to come back). `requests`: a request path (the API, the CLI) whose commands fail after
 * `AVA_REDIS_COMMAND_TIMEOUT_MS`, and at once while the connection is down, so that a caller answers 503 instead of
 * hanging.
 */
export type ConnectionUse = 'worker' | 'requests';

/**
 * Opens the connections a process needs from the configuration's `redis`, `storage` and `queue` sections: the one
 * place where Redis, the database and the producer are wired, for workers, the API and the CLI alike.
 */
export class ServiceConnections {
  /** The queue's Redis key names: the one builder every module of the process is handed. */
  readonly keys: RedisKeys;

  constructor(private readonly config: Pick<AvaConfig, 'redis' | 'storage' | 'queue' | 'retention'>) {
    this.keys = new RedisKeys(config.queue.prefix, config.queue.name);
  }

  /** A Redis connection for `use`, checked to answer. */
  redis(use: ConnectionUse): Promise<Redis> {
    const { redis } = this.config;
    return connectRedis(
      redisTargetOf(redis),
      use === 'requests' ? requestPathRedisOptions(redis.commandTimeoutMs) : {},
    );
  }

  /** The database, checked to answer. */
  database(): Promise<Database> {
    const { storage } = this.config;
    return Database.connect(storage.url, storage.dbName, storage.timeoutMs, storage.socketTimeoutMs);
  }

  /** Redis and the database, opened together; if either fails, the one that opened is closed and the error thrown. */
  async both(use: ConnectionUse): Promise<{ redis: Redis; database: Database }> {
    const [redis, database] = await Promise.allSettled([this.redis(use), this.database()]);
    if (redis.status === 'fulfilled' && database.status === 'fulfilled')
      return { redis: redis.value, database: database.value };
    if (redis.status === 'fulfilled') redis.value.disconnect();
    if (database.status === 'fulfilled') await database.value.close();
    throw redis.status === 'rejected' ? redis.reason : (database as PromiseRejectedResult).reason;
  }

  /**
   * A producer on the configured queue, over `redis`, for `tenant` (the default: messages that name none). With the
   * database, it also recognises messages whose replies are stored as the messages they are.
   */
  producer(redis: Redis, database?: Database): MessageProducer {
    const { queue, redis: r } = this.config;
    const replies = database ? new ReplyRepository(database) : undefined;
    return new MessageProducer(redis, this.keys, {
      attempts: queue.jobAttempts,
      backoffMs: queue.jobBackoffMs,
      minReplicas: r.minReplicas,
      tenant: queue.tenant,
      maxQueuedPerTenant: queue.maxQueuedPerTenant,
      fairShare: queue.fairShare,
      keep: { conversationDays: this.config.retention.conversations, failedJobDays: queue.keepFailedDays },
      ...(replies ? { storedDigests: (keys: readonly string[]) => storedDigests(replies, keys) } : {}),
    });
  }
}

/**
 * The stored replies' digests, or none while the database is unreachable: enqueueing goes on (Redis remembers a
 * message's digest for a day), as it always did with the database away.
 */
async function storedDigests(replies: ReplyRepository, keys: readonly string[]): Promise<Map<string, string | null>> {
  try {
    return await replies.digests(keys);
  } catch (err) {
    if (isDatabaseUnavailable(err)) return new Map();
    throw err;
  }
}
