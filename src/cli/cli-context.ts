import type { Redis } from 'ioredis';
import { loadConfig, type AvaConfig } from '../config/config.js';
import { ServiceConnections } from '../connections/service-connections.js';
import type { MessageProducer } from '../queue/message-producer.js';
import type { RedisKeys } from '../queue/redis-keys.js';
import { ReplyStreamReader } from '../queue/reply-stream-reader.js';
import { scopedKey } from '../contract/scoped-key.js';
import type { Database } from '../storage/database.js';

/** Connections a CLI command opens lazily and closes at the end. */
export class CliContext {
  readonly config: AvaConfig;
  private redisConnection?: Redis;
  private database?: Database;
  private producerInstance?: MessageProducer;
  private subscriberConnection?: Redis;
  private streamReader?: ReplyStreamReader;

  private readonly connections: ServiceConnections;

  constructor() {
    this.config = loadConfig();
    this.connections = new ServiceConnections(this.config);
  }

  /** A Redis connection whose commands fail after AVA_REDIS_COMMAND_TIMEOUT_MS instead of hanging. */
  async redis(): Promise<Redis> {
    this.redisConnection ??= await this.connections.redis('requests');
    return this.redisConnection;
  }

  /** A producer on the configured queue, for `AVA_TENANT`; it reads stored replies to recognise repeated messages. */
  async producer(): Promise<MessageProducer> {
    if (!this.producerInstance) {
      const redis = await this.redis();
      this.producerInstance = this.connections.producer(redis, await this.db());
    }
    return this.producerInstance;
  }

  /** The queue's Redis key names. */
  get keys(): RedisKeys {
    return this.connections.keys;
  }

  /** The key of an id of `AVA_TENANT`'s (a messageId or conversationId), for reading it in the stores directly. */
  key(id: string): string {
    return scopedKey(this.config.queue.tenant, id);
  }

  /** The database. */
  async db(): Promise<Database> {
    this.database ??= await this.connections.database();
    return this.database;
  }

  /** The workers' reply streams on the configured queue: tokens as they are generated, and `done` once stored. */
  async streams(): Promise<ReplyStreamReader> {
    if (!this.streamReader) {
      this.subscriberConnection ??= await this.connections.redis('requests');
      this.streamReader = new ReplyStreamReader(await this.redis(), this.subscriberConnection, this.connections.keys);
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
