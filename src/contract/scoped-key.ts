/** What an id (messageId, conversationId, userId) may be, as a tenant names it. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** What a tenant's name may be: an API token's name, by default. */
export const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The tenant of library and CLI producers that name none, and of everything stored before tenancy. */
export const DEFAULT_TENANT = 'default';

/** Between a tenant and its id in a scoped key: outside both alphabets, so that the split is one to one. */
const SEPARATOR = '/';

/**
 * The key AVA stores and queues a tenant's messageId or conversationId under. A tenant's ids are its own: the same
 * id in two tenants is two keys. The default tenant's key is the id itself, so that what was stored before tenancy
 * keeps its keys; any other tenant's is `<tenant>/<id>`.
 */
export function scopedKey(tenant: string, id: string): string {
  return tenant === DEFAULT_TENANT ? id : `${tenant}${SEPARATOR}${id}`;
}

/** A scoped key split back into its tenant and id; undefined for a string {@link scopedKey} could not have made. */
export function splitScopedKey(key: string): { tenant: string; id: string } | undefined {
  const at = key.indexOf(SEPARATOR);
  const [tenant, id] = at < 0 ? [DEFAULT_TENANT, key] : [key.slice(0, at), key.slice(at + 1)];
  if (!ID_PATTERN.test(id) || !TENANT_PATTERN.test(tenant) || (at >= 0 && tenant === DEFAULT_TENANT)) return undefined;
  return { tenant, id };
}

/** The tenant a scoped key belongs to (the default tenant's for a key it did not make, which no tenant reads). */
export function tenantOfKey(key: string): string {
  return splitScopedKey(key)?.tenant ?? DEFAULT_TENANT;
}

/** The id a scoped key stands for, as its tenant named it (a key it did not make is shown as it is). */
export function idOfKey(key: string): string {
  return splitScopedKey(key)?.id ?? key;
}

/**
 * A message as AVA keeps it inside: its messageId and conversationId replaced by their scoped keys, so that every
 * key made from them (jobs, streams, history, order, stored documents) is the tenant's own.
 */
export function scopedMessage<M extends { tenant: string; messageId: string; conversationId: string }>(m: M): M {
  return { ...m, messageId: scopedKey(m.tenant, m.messageId), conversationId: scopedKey(m.tenant, m.conversationId) };
}
