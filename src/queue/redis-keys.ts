/**
 * Every Redis key name AVA uses, in one place, laid out so that no id a producer may send can reach a key it does not
 * own (BullMQ keeps its own names in `QueueKeys.toKey`; this is AVA's counterpart).
 *
 * Under a queue's qualified name `<prefix>:<queue>` live three families:
 * - BullMQ's own keys: `wait`, `active`, `meta`, `events`, `marker`, … (one word each, see bullmq's QueueKeys);
 * - message jobs: `<jobId>` and `<jobId>:logs|lock|…`, where the job id is `m~` + the messageId with each `:` written
 *   as `~`. `~` is outside the contract's id alphabet, so the mapping is one to one; the id holds no `:` (BullMQ
 *   refuses it), is never an integer (BullMQ refuses those too) and never equals one of BullMQ's words;
 * - AVA's own keys: `ava:<name>…`. No job id of a message can be `ava`, and BullMQ never names a key `ava`.
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

/** The BullMQ job id of a message (see {@link RedisKeys}): `m~` + the messageId with `:` written as `~`. */
export function messageJobId(messageId: string): string {
  return `${MESSAGE_JOB_PREFIX}${messageId.replaceAll(':', '~')}`;
}

/** The messageId a message job id stands for; undefined for a job id that {@link messageJobId} did not make. */
export function messageIdOfJob(jobId: string): string | undefined {
  return jobId.startsWith(MESSAGE_JOB_PREFIX) ? jobId.slice(MESSAGE_JOB_PREFIX.length).replaceAll('~', ':') : undefined;
}
