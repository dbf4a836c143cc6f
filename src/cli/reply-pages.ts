import type { Database } from '../storage/database.js';
import { readReplyFeed } from '../storage/reply-feed.js';

/** Reads one page of stored replies, oldest first, after `since`. */
export type PageReader = (q: {
  since?: string;
  limit: number;
  status?: 'replied' | 'failed';
}) => Promise<{ items: unknown[]; next: string | null }>;

/** Pages of stored replies read from the database. */
export function directReader(db: Database): PageReader {
  return async (q) => {
    const page = await readReplyFeed(db, { ...q, order: 'asc' });
    return { items: page.items.map(({ _id, ...rest }) => ({ messageId: _id, ...rest })), next: page.next };
  };
}
