/** The part of a tokenizer a canned completion needs. */
export interface CountingTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/** A text the model did not generate, as a completion: what a client is sent, and what it counts. */
export interface CannedCompletion {
  text: string;
  /** Its tokens in the model's tokenizer. */
  tokens: number;
  /** `length` when the request's token budget cut it, else `stop`. */
  finishReason: 'stop' | 'length';
}

/**
 * Bounds a reply the model did not write (a template, the dialogue state, a handler, a knowledge answer) as the
 * model's own replies are bounded, so a client sees one kind of completion whoever produced it: the text ends before
 * the first stop string, and past `maxTokens` it is cut at a token boundary (never inside a character: tokens that
 * decode to half a UTF-8 character are left out) with finish reason `length`. Tokens are counted in the model's
 * tokenizer, as a generated reply's are.
 */
export function cannedCompletion(
  tokenizer: CountingTokenizer,
  text: string,
  bounds: { maxTokens?: number; stop?: readonly string[] },
): CannedCompletion {
  const stopAt = Math.min(...(bounds.stop ?? []).map((s) => text.indexOf(s)).filter((i) => i >= 0), text.length);
  const stopped = text.slice(0, stopAt);
  const ids = tokenizer.encode(stopped);
  if (bounds.maxTokens === undefined || ids.length <= bounds.maxTokens)
    return { text: stopped, tokens: ids.length, finishReason: 'stop' };
  let kept = bounds.maxTokens;
  let cut = tokenizer.decode(ids.slice(0, kept));
  // A byte-level BPE token may hold part of a character; the decoder shows it as U+FFFD.
  while (kept > 0 && cut.endsWith('\uFFFD')) cut = tokenizer.decode(ids.slice(0, --kept));
  return { text: cut, tokens: kept, finishReason: 'length' };
}
