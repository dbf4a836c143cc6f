import type { LexicalEvidence } from '../intent/intent-classifier.js';
import type { LinearPattern } from '../intent/linear-pattern.js';
import type { ConversationTurn } from '../storage/reply-document.js';

/** Slot values by name: an order number, a product, an address. */
export type Slots = Readonly<Record<string, string>>;

/**
 * The slots a message fills: the named groups of every intent pattern that matched it (whichever intent is
 * recognised: "it's MP-10002, and do you deliver on Sundays?" still gives the order number) and of the intents
 * file's slot patterns. The first value found for a name is kept.
 */
export function filledSlots(text: string, evidence: LexicalEvidence, slotPatterns: readonly LinearPattern[]): Slots {
  const filled: Record<string, string> = {};
  const keep = (found: Slots | null) => {
    for (const [name, value] of Object.entries(found ?? {})) if (!Object.hasOwn(filled, name)) filled[name] = value;
  };
  for (const found of evidence.slotsOf.values()) keep(found);
  for (const pattern of slotPatterns) keep(pattern.match(text));
  return filled;
}

/**
 * The slots a conversation carries into its next message, as Rasa's slots: each filled by the newest turn that gave
 * it a value, so a user changes one by giving it again. Only the turns in the history window count.
 */
export function carriedSlots(turns: readonly ConversationTurn[]): Slots {
  return Object.assign({}, ...turns.map((t) => t.slots ?? {})) as Slots;
}
