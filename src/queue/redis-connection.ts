import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ServiceUnavailableError } from '../errors/errors.js';
import { redactUrl } from '../logging/redact.js';
import type { AvaConfig } from '../config/config.js';

/**
 * Options every BullMQ connection needs: `maxRetriesPerRequest: null` so blocking commands survive a Redis restart
 * (BullMQ requires it for workers), and a bounded reconnect backoff.
 */
export const BULLMQ_REDIS_OPTIONS: RedisOptions = {
  maxRetriesPerRequest: null,
  enableReadyCheck: true,
  retryStrategy: (times) => Math.min(times * 200, 2_000),
};

/**
 * Options of a connection that serves requests (the API): a command that Redis does not answer within `timeoutMs`
 * (Redis paused, a network partition) fails, and a command sent while the connection is down fails at once instead of
 * waiting in ioredis's offline queue, so a request answers 503 within a bound instead of hanging. The connection
 * itself keeps reconnecting in the background.
 */
export function requestPathRedisOptions(timeoutMs: number): RedisOptions {
  return { maxRetriesPerRequest: 1, commandTimeout: timeoutMs, enableOfflineQueue: false };
}

/**
 * Whether an error means Redis could not be reached in time (connection down or closed, a command timed out, retries
 * exhausted), as opposed to a command Redis answered with an error.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // The database driver's network errors carry the same errno words; they are the database's, not Redis's.
  if (err.name.startsWith('Mongo')) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return (
    /^(Command timed out|Connection is closed|Stream isn't writeable|Reached the max retries per request limit)/.test(
      err.message,
    ) || /\b(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)\b/.test(err.message)
  );
}

/** Where Redis is and how to trust it. */
export interface RedisTarget {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS; with sentinels, only its credentials and db count. */
  url: string;
  /** PEM file of the CA that signed the server's certificate, for `rediss://` with a private CA; system CAs otherwise. */
  tlsCaFile?: string;
  /** Redis Sentinel: the sentinels to ask for the current master, and the master's name. */
  sentinels?: { hosts: ReadonlyArray<{ host: string; port: number }>; master: string };
  /** Redis Cluster: some of its nodes (the rest are discovered). */
  cluster?: ReadonlyArray<{ host: string; port: number }>;
}

/** Where the configuration's Redis section says Redis is. */
export function redisTargetOf(redis: AvaConfig['redis']): RedisTarget {
  return {
    url: redis.url,
    ...(redis.tlsCaFile ? { tlsCaFile: redis.tlsCaFile } : {}),
    ...(redis.sentinels ? { sentinels: { hosts: redis.sentinels, master: redis.sentinelMaster } } : {}),
    ...(redis.clusterNodes ? { cluster: redis.clusterNodes } : {}),
  };
}

/**
 * Opens a Redis connection for BullMQ and checks it answers. With `rediss://` the connection is TLS, verified against
 * the system CAs or `tlsCaFile`; credentials come from the URL. Connections duplicated from it share these options.
 */
export async function connectRedis(target: RedisTarget, extra: RedisOptions = {}): Promise<Redis> {
  const { url } = target;
  const tls = target.tlsCaFile ? { tls: { ca: readFileSync(target.tlsCaFile) } } : {};
  // With sentinels, ioredis asks them for the master at every (re)connection, so a failover is followed on its own.
  const redis = target.cluster
    ? clusterClient(target.cluster, { ...credentialsOf(url), ...BULLMQ_REDIS_OPTIONS, ...tls, ...extra })
    : target.sentinels
      ? new Redis({
          ...credentialsOf(url),
          sentinels: [...target.sentinels.hosts],
          name: target.sentinels.master,
          ...BULLMQ_REDIS_OPTIONS,
          lazyConnect: true,
          ...tls,
          ...extra,
        })
      : new Redis(url, { ...BULLMQ_REDIS_OPTIONS, lazyConnect: true, ...tls, ...extra });
  // While connecting, the error event carries the real reason (a certificate not trusted, a refused connection) while
  // connect() often rejects with only "Connection is closed"; it is reported below. Once connected, BullMQ's
  // listeners take the connection's errors over.
  let reason: Error | undefined;
  const duringConnect = (err: Error) => {
    reason ??= err;
  };
  redis.on('error', duringConnect);
  try {
    await redis.connect();
    await redis.ping();
    redis.off('error', duringConnect);
    return redis;
  } catch (cause) {
    redis.off('error', duringConnect);
    redis.disconnect();
    throw new ServiceUnavailableError(
      `Redis at ${redactUrl(url)} is unreachable: ${(reason ?? (cause as Error)).message}`,
      {
        hint: target.sentinels
          ? 'check AVA_REDIS_SENTINELS and AVA_REDIS_SENTINEL_MASTER'
          : 'start it with `npm run services -- up` or set AVA_REDIS_URL',
        cause,
      },
    );
  }
}

/**
 * A Redis Cluster client. Typed as `Redis`: a `Cluster` answers every command AVA and BullMQ send (BullMQ takes
 * either), as long as the keys of one command share a slot, which a hash-tagged `AVA_QUEUE_PREFIX` (`{ava}`) ensures
 * for all of AVA's keys; configuration refuses a cluster without one.
 */
function clusterClient(nodes: ReadonlyArray<{ host: string; port: number }>, redisOptions: RedisOptions): Redis {
  const cluster = new Cluster([...nodes], {
    redisOptions,
    lazyConnect: true,
    enableReadyCheck: true,
    clusterRetryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  return cluster as unknown as Redis;
}

/** The user, password and db of a Redis URL, for a connection whose servers come from elsewhere (sentinels, a cluster). */
function credentialsOf(url: string): RedisOptions {
  const u = new URL(url);
  const db = Number(u.pathname.slice(1) || 0);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db } : {}),
  };
}
