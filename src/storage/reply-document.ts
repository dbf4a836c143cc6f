import type { Binary } from 'mongodb';
import type { ErrorCode } from '../errors/errors.js';

/** Final state of a message. */
export type ReplyStatus = 'replied' | 'failed';

/** What every reply document holds, replied or failed. */
interface ReplyDocumentBase {
  /** The scoped messageId. */
  _id: string;
  /** Whose message it is; every index of the collection leads with it. */
  tenant: string;
  /** The digest of the message as sent (`messageDigest`): a second send of its messageId must match it. */
  digest?: string;
  /** The scoped conversationId; absent only when the job was so malformed that it carried no valid one. */
  conversationId?: string;
  /** Absent only when the job was so malformed that it carried no valid userId. */
  userId?: string;
  /** Recognised intent: a name from the intents file, `unknown` (below the threshold) or `invalid` (unreadable text). */
  intent?: string;
  /** How the intent was recognised: its confidence in [0, 1], the three best intents, and why text was `invalid`. */
  recognition?: { confidence: number; ranking: Array<{ name: string; confidence: number }>; reason?: string };
  /** How a voice message was heard: its transcript is the message's text. */
  transcript?: TranscriptInfo;
  /** Ids of the knowledge passages put into the prompt, best first. */
  passageIds?: string[];
  /** Model that produced the reply. */
  model: { id: string; revision: string };
  /** What the model did: prompt tokens sent to it (after truncation) and tokens it generated; 0 and 0 without it. */
  tokens: { prompt: number; generated: number };
  /**
   * What a client is told it used (a replied message): the prompt as the model sees it or would have seen it, and the
   * reply's tokens in the model's tokenizer, whoever wrote the reply.
   */
  usage?: { prompt: number; completion: number };
  timings: {
    /** When the producer enqueued the message. */
    queuedAt: Date;
    /** When a worker took the batch holding it. */
    startedAt: Date;
    /** When its reply was ready to store. */
    finishedAt: Date;
    /** Wall time of the generate call of its batch, in ms. */
    inferenceMs: number;
  };
  createdAt: Date;
}

/** A message answered: its reply text and why the text ended. */
export interface RepliedDocument extends ReplyDocumentBase {
  status: 'replied';
  text: string;
  /** `stop` (end of text, a stop string, or a reply without the model) or `length`. */
  finishReason: 'stop' | 'length';
}

/** A message that failed, with why. */
export interface FailedReplyDocument extends ReplyDocumentBase {
  status: 'failed';
  error: { code: ErrorCode; message: string };
}

/**
 * One document per message in collection `replies`, keyed by its scoped messageId (`scopedKey`: the tenant's id).
 * Written once, with an insert keyed so, before the job is acknowledged; a duplicate key keeps the first, so there is
 * never a second one.
 */
export type ReplyDocument = RepliedDocument | FailedReplyDocument;

/** A voice message's transcript and how it was made. */
export interface TranscriptInfo {
  text: string;
  /** The recogniser: `pocketsphinx` or `whisper`. */
  engine: string;
  /** The language it was recognised in (ISO 639): the message's, or the one the recogniser detected. */
  language: string;
  /** Where the recogniser detected the language (the message named none): its probability among the candidates. */
  languageProbability?: number;
  /** The engine's confidence in [0, 1], where it gives one. */
  confidence?: number;
  /** The language model that decoded it, where the engine has several (`domain`, `blend`, `general`). */
  languageModel?: string;
  /** Recognition time, in ms. */
  ms: number;
  /** Length of the audio, in seconds. */
  audioSeconds: number;
  /** Which hypothesis of the engine's n-best list was chosen by meaning (0: the engine's best), of how many. */
  nbest?: { chosen: number; of: number };
}

/**
 * One document per message a worker has taken, in collection `messages`: the `processing` state with its
 * timestamps, written when the batch starts. The final state (replied or failed) is the reply document.
 */
export interface MessageStateDocument {
  /** The scoped messageId. */
  _id: string;
  tenant: string;
  /** The scoped conversationId. */
  conversationId: string;
  userId: string;
  status: 'processing';
  queuedAt: Date;
  startedAt: Date;
  /** Attempts made before this one. */
  attempts: number;
}

/** One exchange of a conversation: the user's message and the assistant's reply. */
export interface ConversationTurn {
  messageId: string;
  user: string;
  assistant: string;
  intent?: string;
  /** The slots the message filled (an order number, a product): what later turns of the conversation carry. */
  slots?: Readonly<Record<string, string>>;
  /** When the message was accepted. */
  at: Date;
  /**
   * The message's place in its conversation, in µs (its conversation order's place, else its enqueue time): orders
   * turns accepted within one millisecond. Absent on turns written before places were recorded; those sort first.
   */
  seq?: number;
}

/**
 * One document per turn in collection `turns`, keyed by messageId. Turns are documents of their own, not an array
 * inside the conversation, so concurrent workers append without read-modify-write: an insert keyed by messageId is
 * atomic and idempotent on every MongoDB-wire server, transactions or not.
 */
export interface TurnDocument extends Omit<ConversationTurn, 'messageId'> {
  /** The scoped messageId. */
  _id: string;
  tenant: string;
  /** The scoped conversationId. */
  conversationId: string;
}

/** One document per conversation in collection `conversations`, keyed by conversationId. */
export interface ConversationDocument {
  /** The scoped conversationId. */
  _id: string;
  tenant: string;
  userId: string;
  createdAt: Date;
  updatedAt: Date;
}

/** A conversation as the library, CLI and API show it: its document and its most recent turns, oldest first. */
export interface ConversationView extends ConversationDocument {
  turns: ConversationTurn[];
}

/** Audio formats replies are spoken in. */
export type AudioFormat = 'wav' | 'ogg';

/** A reply's synthesised speech, cached in collection `audio` so that a second fetch costs nothing. */
export interface SpeechDocument {
  /** `<messageId>:<voice>:<format>`. */
  _id: string;
  messageId: string;
  voice: string;
  format: AudioFormat;
  /** What was spoken: a changed reply text (never, today; replies are written once) is spoken again. */
  textSha256: string;
  data: Binary;
  createdAt: Date;
}
