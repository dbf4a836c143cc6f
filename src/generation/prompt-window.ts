/**
 * Fits a prompt to the model's window: at least one new token, and prompt + new tokens never beyond the window.
 * The prompt is cut from the left, so the most recent turns and the new message survive.
 */
export function fitToWindow(promptIds: readonly number[], maxNewTokens: number, window: number, fallbackId: number): { ids: number[]; maxNew: number } {
  const maxNew = Math.max(1, Math.min(maxNewTokens, window - 1));
  const room = window - maxNew;
  const ids = promptIds.length > room ? promptIds.slice(promptIds.length - room) : [...promptIds];
  return { ids: ids.length > 0 ? ids : [fallbackId], maxNew };
}
