import type { Message } from '../contract/message-contract.js';
import { idOfKey } from '../contract/scoped-key.js';

/**
 * Fills a template's `{name}` and `{name|fallback}` placeholders. Names are looked up in the pattern's slots, then
 * `messageId`, `conversationId`, `userId`, `metadata.<key>`, then the intents file's `vars`; a name found nowhere
 * takes its fallback, or nothing. Values are inserted as text, never re-expanded.
 */
export function renderTemplate(
  template: string,
  message: Message,
  slots: Readonly<Record<string, string>>,
  vars: Readonly<Record<string, string>>,
): string {
  return template.replace(/\{([A-Za-z][A-Za-z0-9_.]*)(?:\|([^}]*))?\}/g, (_all, name: string, fallback?: string) => {
    const value = lookup(name, message, slots, vars);
    return value ?? fallback ?? '';
  });
}

function lookup(
  name: string,
  message: Message,
  slots: Readonly<Record<string, string>>,
  vars: Readonly<Record<string, string>>,
): string | undefined {
  if (Object.hasOwn(slots, name)) return slots[name];
  // Inside a worker the ids are scoped keys; a reply shows them as the tenant sent them.
  if (name === 'messageId' || name === 'conversationId') return idOfKey(message[name]);
  if (name === 'userId') return message.userId;
  if (name.startsWith('metadata.')) {
    // Own keys only: `{metadata.constructor}` must not reach Object's prototype.
    const key = name.slice('metadata.'.length);
    const v = message.metadata && Object.hasOwn(message.metadata, key) ? message.metadata[key] : undefined;
    return v === undefined || v === null ? undefined : String(v);
  }
  return Object.hasOwn(vars, name) ? vars[name] : undefined;
}
