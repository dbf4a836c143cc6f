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
