import { DEFAULT_TENANT, ID_PATTERN, splitScopedKey } from '../contract/scoped-key.js';
import { JobIdError } from '../errors/errors.js';
import { messageIdOfJob } from '../queue/redis-keys.js';

/**
 * The key of a job's reply: the scoped messageId its job id stands for ({@link messageIdOfJob}; BullMQ keeps job ids
 * unique in the queue). A raw job that a producer added by hand with its own job id is keyed by that id, when it is a
 * usable key. A job whose data names another messageId or another tenant, or whose id is unusable as a key, gets a
 * {@link JobIdError} instead, so that no job can create, overwrite or claim another message's reply.
 */
export function replyKeyOf(jobId: string, data: unknown): string | JobIdError {
  const key = messageIdOfJob(jobId) ?? jobId;
  const scoped = splitScopedKey(key);
  if (!scoped)
    return new JobIdError(
      `job id ${JSON.stringify(jobId.slice(0, 200))} is not usable as a message key (a tenant's messageId: letters, digits, _ . : - only, at most 128)`,
    );
  const claimed = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  if (typeof claimed.messageId === 'string' && ID_PATTERN.test(claimed.messageId) && claimed.messageId !== scoped.id) {
    return new JobIdError(
      `data.messageId ${JSON.stringify(claimed.messageId)} differs from the message the job id ${JSON.stringify(jobId)} stands for; enqueue through the producer`,
    );
  }
  const tenant = typeof claimed.tenant === 'string' ? claimed.tenant : DEFAULT_TENANT;
  if (tenant !== scoped.tenant)
    return new JobIdError(
      `data.tenant ${JSON.stringify(tenant.slice(0, 80))} differs from the tenant of job id ${JSON.stringify(jobId)}; enqueue through the producer`,
    );
  return key;
}

/** A string field of raw job data when it is usable as an id, else null. */
export function idField(data: unknown, key: string): string | null {
  const v = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' && ID_PATTERN.test(v) ? v : null;
}
