import { ID_PATTERN as KEY_SAFE } from '../contract/message-contract.js';
import { JobIdError } from '../errors/errors.js';
import { messageIdOfJob } from '../queue/redis-keys.js';

/**
 * The key of a job's reply: the messageId its job id stands for ({@link messageIdOfJob}; BullMQ keeps job ids unique
 * in the queue). A raw job that a producer added by hand with its own job id is keyed by that id, when it is a usable
 * id. A job whose data names another messageId, or whose id is unusable as a key, gets a {@link JobIdError} instead,
 * so that no job can create, overwrite or claim another message's reply.
 */
export function replyKeyOf(jobId: string, data: unknown): string | JobIdError {
  const key = messageIdOfJob(jobId) ?? jobId;
  if (!KEY_SAFE.test(key))
    return new JobIdError(
      `job id ${JSON.stringify(jobId.slice(0, 140))} is not usable as a message id (letters, digits, _ . : - only, at most 128)`,
    );
  const claimed = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).messageId : undefined;
  if (typeof claimed === 'string' && KEY_SAFE.test(claimed) && claimed !== key) {
    return new JobIdError(
      `data.messageId ${JSON.stringify(claimed)} differs from the message the job id ${JSON.stringify(jobId)} stands for; enqueue through the producer`,
    );
  }
  return key;
}

/** A string field of raw job data when it is usable as an id, else null. */
export function idField(data: unknown, key: string): string | null {
  const v = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' && KEY_SAFE.test(v) ? v : null;
}
