import type { Redis } from 'ioredis';
import { loadConfig, type AvaConfig } from '../config/config.js';
import { MessageProducer } from '../queue/message-producer.js';
import { connectRedis, redisTargetOf, requestPathRedisOptions } from '../queue/redis-connection.js';
import { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import { Database } from '../storage/database.js';

/** Connections a CLI command opens lazily and closes at the end. */
export class CliContext {
  readonly config: AvaConfig;
  private redisConnection?: Redis;
  private database?: Database;
  private producerInstance?: MessageProducer;
  private subscriberConnection?: Redis;
  private streamReader?: ReplyStreamReader;

  constructor() {
    this.config = loadConfig();
  }

  /** A Redis connection whose commands fail after AVA_REDIS_COMMAND_TIMEOUT_MS instead of hanging. */
  async redis(): Promise<Redis> {
    this.redisConnection ??= await connectRedis(
      redisTargetOf(this.config.redis),
      requestPathRedisOptions(this.config.redis.commandTimeoutMs),
    );
    return this.redisConnection;
  }

  /** A producer on the configured queue. */
  async producer(): Promise<MessageProducer> {
    if (!this.producerInstance) {
      const redis = await this.redis();
      this.producerInstance = new MessageProducer(redis, {
        queueName: this.config.queue.name,
        prefix: this.config.queue.prefix,
        attempts: this.config.queue.jobAttempts,
        backoffMs: this.config.queue.jobBackoffMs,
        minReplicas: this.config.redis.minReplicas,
      });
    }
    return this.producerInstance;
  }

  /** The database. */
  async db(): Promise<Database> {
    this.database ??= await Database.connect(
      this.config.storage.url,
      this.config.storage.dbName,
      this.config.storage.timeoutMs,
      this.config.storage.socketTimeoutMs,
    );
    return this.database;
  }

  /** The workers' reply streams on the configured queue: tokens as they are generated, and `done` once stored. */
  async streams(): Promise<ReplyStreamReader> {
    if (!this.streamReader) {
      this.subscriberConnection ??= await connectRedis(
        redisTargetOf(this.config.redis),
        requestPathRedisOptions(this.config.redis.commandTimeoutMs),
      );
      this.streamReader = new ReplyStreamReader(
        await this.redis(),
        this.subscriberConnection,
        this.config.queue.prefix,
        this.config.queue.name,
      );
    }
    return this.streamReader;
  }

  /** Closes whatever was opened. */
  async close(): Promise<void> {
    this.subscriberConnection?.disconnect();
    await this.producerInstance?.close();
    await this.redisConnection?.quit();
    await this.database?.close();
  }
}
