import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';

/** The window failed authentications are counted in, in ms. */
const WINDOW_MS = 60_000;

/**
 * Counts failed authentications per client address in Redis, shared by every API process: past `max` failures in a
 * minute, the address's next wrong tokens are answered 429 for the rest of it (the auth plugin admits a valid token
 * whatever its address did, so nobody behind the same proxy or NAT is locked out). Counting is best effort: with Redis
 * away the check lets requests through (they are authenticated as usual), logged.
 */
export class FailedAuthLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keyOf: (address: string) => string,
    private readonly max: number,
    private readonly log: Logger,
  ) {}

  /** Seconds until the address may try again, or 0 when it is under the limit. */
  async blockedFor(address: string): Promise<number> {
    try {
      const key = this.keyOf(address);
      // One read per request; the window's end is read only for an address that is over the limit.
      if (Number((await this.redis.get(key)) ?? 0) < this.max) return 0;
      return Math.max(1, Math.ceil((await this.redis.pttl(key)) / 1000));
    } catch (err) {
      this.log.warn({ err, address }, 'reading failed authentications failed; not limiting this request');
      return 0;
    }
  }

  /** Counts one failed authentication of the address. */
  async failed(address: string): Promise<void> {
    try {
      const key = this.keyOf(address);
      await this.redis.pipeline().incr(key).pexpire(key, WINDOW_MS, 'NX').exec();
    } catch (err) {
      this.log.warn({ err, address }, 'counting a failed authentication failed');
    }
  }
}
