/** MongoDB's duplicate key error code. */
export const DUPLICATE_KEY = 11000;

/** True when a write failed only on duplicate keys (the documents exist already), which idempotent inserts expect. */
export function onlyDuplicateKeys(err: unknown): boolean {
  const e = err as { code?: number; writeErrors?: Array<{ code: number }> | { code: number } };
  if (e.writeErrors) return [e.writeErrors].flat().every((w) => w.code === DUPLICATE_KEY);
  return e.code === DUPLICATE_KEY;
}
