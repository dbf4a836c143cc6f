import type { Database } from '../storage/database.js';
import { readReplyFeed } from '../storage/reply-feed.js';
import { presentReply } from '../conversation/presented.js';

/** Reads one page of stored replies, oldest first, after `since`. */
export type PageReader = (q: {
  since?: string;
  limit: number;
  status?: 'replied' | 'failed';
}) => Promise<{ items: unknown[]; next: string | null }>;

/** Pages of a tenant's stored replies read from the database, shown as the API shows them. */
export function directReader(db: Database, tenant: string): PageReader {
  return async (q) => {
    const page = await readReplyFeed(db, { ...q, tenant, order: 'asc' });
    return { items: page.items.map(presentReply), next: page.next };
  };
}
