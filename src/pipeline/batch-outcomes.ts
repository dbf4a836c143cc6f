import type { QueuedJob } from '../queue/batch-collector.js';
import type { StoredReplyMark } from '../queue/stored-reply-marks.js';
import { answerError, type Answer, type JobOutcome, type ParsedJob, type Sorted } from './batch-stages.js';

/**
 * Each job's outcome, in the batch's order, which decides how it is acknowledged: refused (no reply can be keyed),
 * deferred (parked behind an earlier message of its conversation), already stored (by an earlier pass, or found by
 * the insert's duplicate key), replied or failed.
 */
export function batchOutcomes(
  jobs: readonly QueuedJob[],
  sorted: Sorted,
  waiting: readonly ParsedJob[],
  marked: ReadonlyMap<string, StoredReplyMark>,
  answered: { answers: readonly Answer[]; stored: ReadonlySet<string> },
): JobOutcome[] {
  const outcomes = new Map<QueuedJob, JobOutcome>(sorted.refused);
  for (const w of waiting)
    outcomes.set(w.job, { kind: 'deferred', messageId: w.key, conversationId: w.message.conversationId });
  for (const p of [...sorted.parsed, ...sorted.voice, ...sorted.malformed])
    if (marked.has(p.key)) outcomes.set(p.job, { kind: 'already-stored', messageId: p.key });
  for (const a of answered.answers) {
    const error = answerError(a);
    // Not stored: a reply with this key was there already (its worker died before marking it, or an enqueue after
    // BullMQ trimmed the job record).
    if (!answered.stored.has(a.key)) outcomes.set(a.job, { kind: 'already-stored', messageId: a.key });
    else
      outcomes.set(a.job, error ? { kind: 'failed', messageId: a.key, error } : { kind: 'replied', messageId: a.key });
  }
  return jobs.map((job) => {
    const outcome = outcomes.get(job);
    // Every job is refused, found marked or answered before this.
    if (!outcome) throw new Error(`batch processor: job ${job.id} has no outcome`);
    return outcome;
  });
}
