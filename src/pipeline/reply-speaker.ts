import type { Logger } from '../logging/logger.js';
import type { SpeechCache } from '../voice/speech-cache.js';
import { storableText } from '../contract/storable-text.js';
import { answerText, type StoredAnswers } from './batch-stages.js';

/** A stored reply to speak. */
export interface SpokenReply {
  messageId: string;
  text: string;
}

/**
 * Speaks the stored replies of messages that asked for speech, in the background, one at a time, and caches the
 * audio. It never holds a batch back: the replies are stored and acknowledged already, and a reply whose speech was
 * not made (the worker stopped, or the synthesiser failed) is spoken when its audio is first fetched.
 */
export class ReplySpeaker {
  private queue: SpokenReply[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly speech: SpeechCache,
    private readonly log: Logger,
  ) {}

  /** Queues replies to speak. */
  add(replies: readonly SpokenReply[]): void {
    if (replies.length === 0) return;
    this.queue.push(...replies);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves when every queued reply is spoken (or failed, logged). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      try {
        await this.speech.ensureWav(next.messageId, next.text);
      } catch (err) {
        this.log.warn(
          { err, messageId: next.messageId },
          'speaking a reply failed; its audio will be made when first fetched',
        );
      }
    }
  }
}

/** Speaks the stored replies of the messages that asked for speech (after storing: speech never delays a reply). */
export function speakReplies(speaker: ReplySpeaker | undefined, { answers, stored }: StoredAnswers): void {
  speaker?.add(
    answers.flatMap((a) => {
      const text = answerText(a);
      return stored.has(a.key) && a.kind !== 'rejected' && a.planned.message.speech && text !== undefined
        ? [{ messageId: a.key, text: storableText(text) }]
        : [];
    }),
  );
}
