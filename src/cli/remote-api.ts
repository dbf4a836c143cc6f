import type { PageReader } from './reply-pages.js';

/** Pages of stored replies read through the API's `/v1/replies`. */
export function apiReader(url: string, token: string): PageReader {
  return async (q) => {
    const params = new URLSearchParams({
      limit: String(q.limit),
      ...(q.since ? { since: q.since } : {}),
      ...(q.status ? { status: q.status } : {}),
    });
    return (await apiGet(url, `/v1/replies?${params}`, token)) as { items: unknown[]; next: string | null };
  };
}

/** GETs `path` of the API at `base` with the token; a non-2xx answer throws with its status and body. */
export async function apiGet(base: string, path: string, token: string): Promise<unknown> {
  const res = await fetch(new URL(path, base), { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`the API answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** POSTs `body` as JSON to `path` of the API at `base` with the token; a non-2xx answer throws. */
export async function apiSend(base: string, path: string, token: string, body: unknown): Promise<unknown> {
  const res = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`the API answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** The longest `?wait=` the API grants one long-poll of GET /v1/messages/:id. */
const LONGEST_POLL_MS = 30_000;

/**
 * A message's state through the API, long-polled (`?wait=`, 30 s at most each) until it is replied or failed or
 * `timeoutMs` (AVA_REPLY_TIMEOUT_MS) has passed; then the last state seen.
 */
export async function apiReply(
  base: string,
  token: string,
  messageId: string,
  timeoutMs: number,
): Promise<{ status: string; text?: string; error?: unknown }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const wait = Math.max(0, Math.min(LONGEST_POLL_MS, deadline - Date.now()));
    const doc = (await apiGet(base, `/v1/messages/${encodeURIComponent(messageId)}?wait=${wait}`, token)) as {
      status: string;
      text?: string;
      error?: unknown;
    };
    if (doc.status === 'replied' || doc.status === 'failed' || Date.now() >= deadline) return doc;
  }
}
