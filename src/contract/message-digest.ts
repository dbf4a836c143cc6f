import { createHash } from 'node:crypto';
import type { InboundMessage } from './message-contract.js';

/**
 * What makes two sends of one messageId the same message, as a SHA-256 of the message's fields in a canonical order
 * (keys sorted at every depth). A voice message counts by its audio's content (`audio.sha256`) rather than by where
 * the upload was stored, so that a retried upload of the same file is the same message.
 */
export function messageDigest(m: InboundMessage): string {
  const audio = m.audio?.sha256 ? { language: m.audio.language, sha256: m.audio.sha256 } : m.audio;
  return createHash('sha256')
    .update(canonicalJson({ ...m, ...(audio ? { audio } : {}) }))
    .digest('base64url');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
