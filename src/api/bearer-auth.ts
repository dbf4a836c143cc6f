import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * What a token may do: `enqueue` and `read` its tenant's messages; `admin` read every tenant's (operators, the
 * dashboard), which includes `read`.
 */
export type Scope = 'enqueue' | 'read' | 'admin';

/** A configured API token: it acts for one tenant. */
export interface ApiToken {
  name: string;
  token: string;
  scopes: readonly Scope[];
  tenant: string;
}

/** Who a request is, once its token is checked. */
export interface Caller {
  /** The token's name. */
  name: string;
  tenant: string;
  admin: boolean;
}

/**
 * The outcome of checking a request's `Authorization` header for a scope: `unknown` for a missing or wrong token
 * (401), `forbidden` for a valid token without the scope (403).
 */
export type AuthResult =
  | { ok: true; caller: Caller }
  | { ok: false; status: 401; message: string }
  | { ok: false; status: 403; message: string };

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with `timingSafeEqual`, so the comparison
 * takes the same time whatever the guess and whatever its length; every configured token is checked.
 */
export class BearerAuth {
  private readonly tokens: ReadonlyArray<{ caller: Caller; digest: Buffer; scopes: readonly Scope[] }>;

  constructor(tokens: readonly ApiToken[]) {
    this.tokens = tokens.map((t) => ({
      caller: { name: t.name, tenant: t.tenant, admin: t.scopes.includes('admin') },
      digest: digest(t.token),
      scopes: t.scopes,
    }));
  }

  /** Checks `header` (the raw Authorization value) for `scope`. */
  check(header: string | undefined, scope: Scope): AuthResult {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) return { ok: false, status: 401, message: 'missing bearer token: send Authorization: Bearer <token>' };
    const given = digest(match[1]);
    let found: (typeof this.tokens)[number] | undefined;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, given) && !found) found = t;
    if (!found) return { ok: false, status: 401, message: 'unknown or revoked token' };
    const granted = found.scopes.includes(scope) || (scope === 'read' && found.caller.admin);
    if (!granted) return { ok: false, status: 403, message: `token "${found.caller.name}" lacks the ${scope} scope` };
    return { ok: true, caller: found.caller };
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
