/**
 * Every Redis key name AVA uses, in one place, laid out so that no id a producer may send can reach a key it does not
 * own (BullMQ keeps its own names in `QueueKeys.toKey`; this is AVA's counterpart). Made once per process, by
 * `ServiceConnections`, and handed to whatever names a key.
 *
 * Under a queue's qualified name `<prefix>:<queue>` live three families:
 * - BullMQ's own keys: `wait`, `active`, `meta`, `events`, `marker`, … (one word each, see bullmq's QueueKeys);
 * - message jobs: `<jobId>` and `<jobId>:logs|lock|…`, where the job id is `m~` + the message's scoped key (its
 *   tenant's messageId, see `scopedKey`) with each `:` written as `~`. `~` is outside the alphabets of ids and tenants,
 *   so the mapping is one to one; the id holds no `:` (BullMQ refuses it), is never an integer (BullMQ refuses those
 *   too) and never equals one of BullMQ's words;
 * - AVA's own keys: `ava:<name>…`. No job id of a message can be `ava`, and BullMQ never names a key `ava`.
 *
 * Every id in a key below is a scoped key, and every tenant a tenant's name, so no tenant can name another's keys.
 */
export class RedisKeys {
  /** `<prefix>:<queue>`, BullMQ's qualified name of the queue. */
  readonly queue: string;

  constructor(
    readonly prefix: string,
    readonly queueName: string,
  ) {
    this.queue = `${prefix}:${queueName}`;
  }

  /** A job's log list (`Job.log` writes it; AVA's stored-reply marks live there). */
  jobLogs(jobId: string): string {
    return `${this.queue}:${jobId}:logs`;
  }

  /** A message's reply stream; its pub/sub channel has the same name. */
  replyStream(messageId: string): string {
    return `${this.replyStreamPrefix}${messageId}`;
  }

  /** What every reply stream key starts with (for pattern subscriptions). */
  get replyStreamPrefix(): string {
    return `${this.queue}:ava:stream:`;
  }

  /** The two keys of a conversation's recent turns; one hash tag keeps them in one slot of a Redis Cluster. */
  history(conversationId: string): { order: string; turns: string } {
    const base = `${this.queue}:ava:history:{${conversationId}}`;
    return { order: `${base}:order`, turns: `${base}:turns` };
  }

  /** Live workers' heartbeats (a hash by consumer id). */
  get workers(): string {
    return `${this.queue}:ava:workers`;
  }

  /** Reply counters and recent latencies, for /metrics and the dashboard. */
  get replyCounts(): { counts: string; latencies: string } {
    return { counts: `${this.queue}:ava:reply-counts`, latencies: `${this.queue}:ava:recent-latencies` };
  }

  /** The failed-job reconciler's cursor and lock. */
  get reconciler(): { cursor: string; lock: string } {
    return { cursor: `${this.queue}:ava:reconciled-until`, lock: `${this.queue}:ava:reconciler-lock` };
  }

  /** A conversation's owner (its first userId) and pending messages by the place each was given at enqueue. */
  conversation(conversationId: string): { owner: string; pending: string } {
    const base = `${this.queue}:ava:conversation:{${conversationId}}`;
    return { owner: `${base}:owner`, pending: `${base}:pending` };
  }

  /** The digest of a message's content, by its scoped key: what makes a second send of it the same message. */
  messageDigest(messageKey: string): string {
    return `${this.queue}:ava:digest:${messageKey}`;
  }

  /** A tenant's unanswered messages (scoped keys by enqueue time): its backlog bound and its fair-share ranks. */
  tenantPending(tenant: string): string {
    return `${this.queue}:ava:tenant:${tenant}:pending`;
  }

  /** The set of every tenant's pending set: where the queue's oldest unanswered message is found. */
  get tenantsPending(): string {
    return `${this.queue}:ava:tenants-pending`;
  }

  /** A tenant's counter of one quota in the current minute. */
  tenantQuota(tenant: string, quota: string): string {
    return `${this.queue}:ava:tenant:${tenant}:quota:${quota}`;
  }

  /** A shared rate-limit window of the API, by client. */
  rateLimit(client: string): string {
    return `${this.queue}:ava:rate:${client}`;
  }

  /** The retention sweeper's lock: one per database, whichever queue its workers serve. */
  static retentionLock(dbName: string): string {
    return `ava:${dbName}:retention-lock`;
  }
}

/** What every message job id starts with. */
const MESSAGE_JOB_PREFIX = 'm~';

/** The BullMQ job id of a message by its scoped key (see {@link RedisKeys}): `m~` + the key, `:` written as `~`. */
export function messageJobId(messageKey: string): string {
  return `${MESSAGE_JOB_PREFIX}${messageKey.replaceAll(':', '~')}`;
}

/** The scoped key a message job id stands for; undefined for a job id that {@link messageJobId} did not make. */
export function messageIdOfJob(jobId: string): string | undefined {
  return jobId.startsWith(MESSAGE_JOB_PREFIX) ? jobId.slice(MESSAGE_JOB_PREFIX.length).replaceAll('~', ':') : undefined;
}
