import type { StreamEvent } from './reply-stream.js';

/** What a token did to the text a reader shows. */
export type TokenEffect = 'append' | 'restart' | 'ignore';

/**
 * The text a stream reader has shown for a message, attempt-aware: a token of a new attempt (the message generated
 * again after a retry) restarts the text, and tokens of an attempt already superseded are ignored. At the end,
 * {@link reconcile} says what to add so that the shown text equals the stored reply.
 */
export class StreamedText {
  /** Text of the current attempt. */
  text = '';
  private attempt: string | undefined;
  private readonly retired = new Set<string>();

  /** Applies a token event and says whether it appends, restarts the text (then appends), or is dropped. */
  apply(event: Extract<StreamEvent, { type: 'token' }>): TokenEffect {
    if (this.retired.has(event.attempt)) return 'ignore';
    let effect: TokenEffect = 'append';
    if (this.attempt !== undefined && event.attempt !== this.attempt) {
      this.retired.add(this.attempt);
      this.text = '';
      effect = 'restart';
    }
    this.attempt = event.attempt;
    this.text += event.text;
    return effect;
  }

  /**
   * What to show so that the text equals `stored`: the missing tail, or a restart with the whole text when what was
   * shown is not a prefix of it (or is unknown, `trusted` false). Updates the state to `stored`.
   */
  reconcile(stored: string, trusted = true): { restart: boolean; append: string } {
    const fits = trusted && stored.startsWith(this.text);
    const out = fits ? { restart: false, append: stored.slice(this.text.length) } : { restart: true, append: stored };
    this.text = stored;
    return out;
  }
}
