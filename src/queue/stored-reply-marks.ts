import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';

/** What a mark says of a job's stored reply: enough to rebuild its conversation turn. */
export type StoredReplyMark = ({ status: 'replied'; text: string } | { status: 'failed' }) & {
  intent?: string;
  /** A voice message's transcript: its text, for the conversation turn written when it is delivered again. */
  heard?: string;
  /** The message's place in its conversation (µs), which orders the turn. */
  place?: number;
};

/** What names a job's log: its id (a BullMQ `Job` has one). */
export interface JobRef {
  id?: string;
}

/** Prefix of the job log line that marks a stored reply. */
const MARK = 'ava:reply-stored ';

/**
 * Marks, on the job itself, that its reply is stored: a line in the job's BullMQ log (`<queue>:<jobId>:logs`, the
 * list `Job.log` writes, named by {@link RedisKeys.jobLogs}), which goes away with the job. A job delivered again
 * (retried, or taken over after a stall) reads its marks from Redis instead of looking its reply up in the database,
 * so a re-delivered batch costs the same whatever the database holds. A job whose worker died between storing and marking has no mark; it is answered again
 * and the database's duplicate key keeps the first reply.
 */
export class StoredReplyMarks {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Marks the jobs' replies as stored, in one round trip. */
  async mark(entries: ReadonlyArray<{ job: JobRef; reply: StoredReplyMark }>): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { job, reply } of entries)
      pipeline.rpush(this.keys.jobLogs(String(job.id)), `${MARK}${JSON.stringify(reply)}`);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** The marks of these jobs, by each entry's reply key; jobs without one are absent. One round trip. */
  async read(entries: ReadonlyArray<{ job: JobRef; key: string }>): Promise<Map<string, StoredReplyMark>> {
    if (entries.length === 0) return new Map();
    const pipeline = this.redis.pipeline();
    for (const { job } of entries) pipeline.lrange(this.keys.jobLogs(String(job.id)), 0, -1);
    const results = (await pipeline.exec()) ?? [];
    const out = new Map<string, StoredReplyMark>();
    entries.forEach(({ key }, i) => {
      const [err, lines] = results[i] ?? [null, []];
      if (err) throw err;
      const line = (lines as string[]).find((l) => l.startsWith(MARK));
      if (line) out.set(key, JSON.parse(line.slice(MARK.length)) as StoredReplyMark);
    });
    return out;
  }
}
