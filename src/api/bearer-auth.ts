import { createHash, timingSafeEqual } from 'node:crypto';

/** What a token may do. */
export type Scope = 'enqueue' | 'read';

/** A configured API token. */
export interface ApiToken {
  name: string;
  token: string;
  scopes: readonly Scope[];
}

/** The outcome of checking a request's `Authorization` header for a scope. */
export type AuthResult = { ok: true; name: string } | { ok: false; status: 401 | 403; message: string };

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with `timingSafeEqual`, so the comparison
 * takes the same time whatever the guess and whatever its length; every configured token is checked.
 */
export class BearerAuth {
  private readonly tokens: ReadonlyArray<{ name: string; digest: Buffer; scopes: readonly Scope[] }>;

  constructor(tokens: readonly ApiToken[]) {
    this.tokens = tokens.map((t) => ({ name: t.name, digest: digest(t.token), scopes: t.scopes }));
  }

  /** Checks `header` (the raw Authorization value) for `scope`. */
  check(header: string | undefined, scope: Scope): AuthResult {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) return { ok: false, status: 401, message: 'missing bearer token: send Authorization: Bearer <token>' };
    const given = digest(match[1]);
    let found: (typeof this.tokens)[number] | undefined;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, given) && !found) found = t;
    if (!found) return { ok: false, status: 401, message: 'unknown or revoked token' };
    if (!found.scopes.includes(scope))
      return { ok: false, status: 403, message: `token "${found.name}" lacks the ${scope} scope` };
    return { ok: true, name: found.name };
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
