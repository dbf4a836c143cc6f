import type { Redis } from 'ioredis';
import { QuotaError } from '../errors/errors.js';
import type { Logger } from '../logging/logger.js';
import type { RedisKeys } from '../queue/redis-keys.js';
import { RedisScripts } from '../redis/redis-scripts.js';

/** A tenant's limits in the API. */
export interface TenantLimits {
  messagesPerMinute: number;
  bytesPerMinute: number;
  /** Live reply streams at once, per API process. */
  maxStreams: number;
  /** Most messages in one request. */
  maxMessagesPerRequest: number;
  /** Largest message, as JSON. */
  maxMessageBytes: number;
}

const MINUTE_MS = 60_000;

/**
 * Each tenant's quotas, checked before any work is done: messages and bytes per minute in fixed windows counted in
 * Redis (shared by every API process; one script call takes both, all or none), open streams counted in this
 * process, and the size of a request. A quota is refused with a {@link QuotaError} naming its setting. With Redis
 * away the per-minute windows are not enforced (the enqueue that follows answers 503 on its own), as the API's
 * rate limit does.
 */
export class TenantQuotas {
  private readonly streams = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly limits: TenantLimits,
    private readonly log: Logger,
  ) {}

  /**
   * Admits a request's messages for a tenant: their number and sizes (each as JSON), then the tenant's minute. Throws
   * a {@link QuotaError} for the first bound passed; nothing is taken from the minute when a size is refused.
   */
  async admit(tenant: string, messages: readonly unknown[], pathOf: (i: number) => string): Promise<void> {
    const sizes = messages.map((m) => Buffer.byteLength(JSON.stringify(m) ?? ''));
    this.checkRequest(sizes, pathOf);
    await this.take(
      tenant,
      messages.length,
      sizes.reduce((a, b) => a + b, 0),
    );
  }

  /** Checks the size of each message of a request and their number; `sizes` are their JSON lengths in bytes. */
  checkRequest(sizes: readonly number[], pathOf: (i: number) => string): void {
    const { maxMessagesPerRequest, maxMessageBytes } = this.limits;
    if (sizes.length > maxMessagesPerRequest)
      throw new QuotaError(
        'AVA_API_MAX_MESSAGES_PER_REQUEST',
        'size',
        `a request may carry at most ${maxMessagesPerRequest} messages; this one has ${sizes.length}`,
      );
    const large = sizes.findIndex((n) => n > maxMessageBytes);
    if (large >= 0)
      throw new QuotaError(
        'AVA_API_MAX_MESSAGE_BYTES',
        'size',
        `${pathOf(large) || 'the message'} is ${sizes[large]} bytes as JSON (text and history); at most ${maxMessageBytes} are accepted`,
      );
  }

  /** Takes `messages` and `bytes` from the tenant's minute, or throws when either would pass its quota. */
  async take(tenant: string, messages: number, bytes: number): Promise<void> {
    const { messagesPerMinute, bytesPerMinute } = this.limits;
    let outcome: [number, number];
    try {
      outcome = await RedisScripts.on(this.redis).avaQuotaTake(
        2,
        this.keys.tenantQuota(tenant, 'messages'),
        this.keys.tenantQuota(tenant, 'bytes'),
        MINUTE_MS,
        messages,
        messagesPerMinute,
        bytes,
        bytesPerMinute,
      );
    } catch (err) {
      this.log.warn({ err, tenant }, 'counting a quota failed; not limiting this request');
      return;
    }
    const [passed, leftMs] = outcome;
    if (passed === 0) return;
    const seconds = Math.max(1, Math.ceil(leftMs / 1000));
    throw passed === 1
      ? new QuotaError(
          'AVA_TENANT_MESSAGES_PER_MINUTE',
          'rate',
          `the tenant may send ${messagesPerMinute} messages a minute; retry in ${seconds} s`,
          seconds,
        )
      : new QuotaError(
          'AVA_TENANT_BYTES_PER_MINUTE',
          'rate',
          `the tenant may send ${bytesPerMinute} bytes a minute; retry in ${seconds} s`,
          seconds,
        );
  }

  /** Counts a stream the tenant opens, or throws past its bound; the returned function counts it closed (once). */
  openStream(tenant: string): () => void {
    const open = this.streams.get(tenant) ?? 0;
    if (open >= this.limits.maxStreams)
      throw new QuotaError(
        'AVA_TENANT_MAX_STREAMS',
        'rate',
        `the tenant has ${open} reply streams open; at most ${this.limits.maxStreams} at once`,
        1,
      );
    this.streams.set(tenant, open + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const left = (this.streams.get(tenant) ?? 1) - 1;
      if (left > 0) this.streams.set(tenant, left);
      else this.streams.delete(tenant);
    };
  }
}
