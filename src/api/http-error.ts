import type { z } from 'zod';

/** A 4xx (or 5xx) answer with a stable code; the API's error handlers turn it into their error shape. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly issues?: ReadonlyArray<{ path: string; message: string }>) {
    super(message);
  }
}

/** Validates `value` (a request's `where`: body, query, path) or throws a 400 naming each bad field. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({
    path: `${where}.${i.path.map(String).join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(',') : '')}`,
    message: i.code === 'unrecognized_keys' ? `unknown parameter(s): ${i.keys.join(', ')}` : i.message,
  }));
  throw new HttpError(400, 'ERR_REQUEST', issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
}
