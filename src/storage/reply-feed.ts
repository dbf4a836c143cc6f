import type { ReplyDocument } from './reply-document.js';
import type { Database } from './database.js';

/** A page of the reply feed. */
export interface FeedQuery {
  /** Whose replies; every tenant's when absent (an admin's feed). */
  tenant?: string;
  /** A cursor from a previous page, or an ISO-8601 date-time. */
  since?: string;
  limit: number;
  status?: 'replied' | 'failed';
  intent?: string;
  order: 'asc' | 'desc';
}

/** A cursor or date that could not be read. */
export class BadCursorError extends Error {}

/**
 * Stored replies in (createdAt, _id) order, resuming after a cursor: the feed dashboards and `ava replies --follow`
 * read. Returns the page and the cursor of its last reply (or the given one when the page is empty).
 */
export async function readReplyFeed(
  database: Database,
  q: FeedQuery,
): Promise<{ items: ReplyDocument[]; next: string | null }> {
  // A tenant's feed is an equality on `tenant` and a range on `createdAt` (index `tenant_1_createdAt_1__id_1`).
  const filter: Record<string, unknown> = q.tenant === undefined ? {} : { tenant: q.tenant };
  if (q.status) filter.status = q.status;
  if (q.intent) filter.intent = q.intent;
  const after = q.order === 'asc' ? '$gt' : '$lt';
  if (q.since) {
    const [at, id] = decodeCursor(q.since);
    filter.$or = id
      ? [{ createdAt: { [after]: at } }, { createdAt: at, _id: { [after]: id } }]
      : [{ createdAt: { [after]: at } }];
  }
  const dir = q.order === 'asc' ? 1 : -1;
  const items = await database.replies.find(filter).sort({ createdAt: dir, _id: dir }).limit(q.limit).toArray();
  const last = items[items.length - 1];
  return { items, next: last ? encodeCursor(last) : (q.since ?? null) };
}

function encodeCursor(doc: ReplyDocument): string {
  return Buffer.from(JSON.stringify([doc.createdAt.toISOString(), doc._id])).toString('base64url');
}

function decodeCursor(since: string): [Date, string | undefined] {
  const asDate = new Date(since);
  if (/^\d{4}-\d{2}-\d{2}/.test(since) && !Number.isNaN(asDate.getTime())) return [asDate, undefined];
  try {
    const [at, id] = JSON.parse(Buffer.from(since, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(at);
    if (typeof id === 'string' && !Number.isNaN(date.getTime())) return [date, id];
  } catch {
    // fall through
  }
  throw new BadCursorError('must be a cursor from a previous page or an ISO-8601 date-time');
}
