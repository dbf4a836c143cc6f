import { ID_PATTERN as KEY_SAFE } from '../contract/message-contract.js';
import { JobIdError } from '../errors/errors.js';

/**
 * The key of a job's reply: its job id, which BullMQ keeps unique in the queue (the producer makes it the messageId).
 * A job whose data names another messageId, or whose id is unusable as a key, gets a {@link JobIdError} instead, so
 * that no job can create, overwrite or claim another message's reply.
 */
export function replyKeyOf(jobId: string, data: unknown): string | JobIdError {
  if (!KEY_SAFE.test(jobId)) return new JobIdError(`job id ${JSON.stringify(jobId.slice(0, 140))} is not usable as a message id (letters, digits, _ . : - only, at most 128)`);
  const claimed = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).messageId : undefined;
  if (typeof claimed === 'string' && KEY_SAFE.test(claimed) && claimed !== jobId) {
    return new JobIdError(`data.messageId ${JSON.stringify(claimed)} differs from the job id ${JSON.stringify(jobId)}; enqueue with jobId = messageId`);
  }
  return jobId;
}

/** A string field of raw job data when it is usable as an id, else null. */
export function idField(data: unknown, key: string): string | null {
  const v = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' && KEY_SAFE.test(v) ? v : null;
}
