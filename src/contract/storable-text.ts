import { CONTROL_CHARACTERS } from './message-contract.js';

// The characters the message contract refuses. NUL in particular is refused by FerretDB, so one such character in a
// reply would fail its whole batch.
const UNSTORABLE = new RegExp(CONTROL_CHARACTERS.source, 'g');

/**
 * A reply text as it can be stored and shown: control characters dropped and lone surrogates replaced. A model can
 * generate any byte (GPT-2's byte-level tokens include NUL), and a custom handler can return anything.
 */
export function storableText(text: string): string {
  return text.toWellFormed().replace(UNSTORABLE, '');
}
