import type { Message } from '../contract/message-contract.js';

/**
 * Fills a template's `{name}` and `{name|fallback}` placeholders. Names are looked up in the pattern's slots, then
 * `messageId`, `conversationId`, `userId`, `metadata.<key>`, then the intents file's `vars`; a name found nowhere
 * takes its fallback, or nothing. Values are inserted as text, never re-expanded.
 */
export function renderTemplate(template: string, message: Message, slots: Readonly<Record<string, string>>, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{([A-Za-z][A-Za-z0-9_.]*)(?:\|([^}]*))?\}/g, (_all, name: string, fallback?: string) => {
    const value = lookup(name, message, slots, vars);
    return value ?? fallback ?? '';
  });
}

function lookup(name: string, message: Message, slots: Readonly<Record<string, string>>, vars: Readonly<Record<string, string>>): string | undefined {
  if (Object.hasOwn(slots, name)) return slots[name];
  if (name === 'messageId' || name === 'conversationId' || name === 'userId') return message[name];
  if (name.startsWith('metadata.')) {
    const v = message.metadata?.[name.slice('metadata.'.length)];
    return v === undefined ? undefined : String(v);
  }
  return Object.hasOwn(vars, name) ? vars[name] : undefined;
}
