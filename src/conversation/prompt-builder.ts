import type { ConversationTurn } from '../contract/reply-document.js';

/** Role labels of the dialogue prompt. */
export const USER_LABEL = 'User';
export const ASSISTANT_LABEL = 'Assistant';

/**
 * The text sent to the model for a new message: recent turns oldest first, then the message, then the assistant
 * label for the model to continue. The generator cuts the prompt from the left when it exceeds the window, so the
 * most recent turns and the new message are what survive.
 */
export function buildPrompt(turns: readonly ConversationTurn[], text: string): string {
  const lines: string[] = [];
  for (const t of turns) lines.push(`${USER_LABEL}: ${t.user}`, `${ASSISTANT_LABEL}: ${t.assistant}`);
  lines.push(`${USER_LABEL}: ${text}`, `${ASSISTANT_LABEL}:`);
  return lines.join('\n');
}
