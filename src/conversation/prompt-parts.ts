import type { ConversationTurn } from '../storage/reply-document.js';

/** The roles of a chat prompt. */
export type PromptRole = 'system' | 'user' | 'assistant';

/**
 * What a chat model's template puts around each message, and its generation prompt: the part of the tokenizer's chat
 * frame (models/chat-frame.ts) the prompt encoder needs, declared here so that prompts do not depend on how the
 * frame was derived.
 */
export interface PromptFrame {
  readonly open: Readonly<Record<PromptRole, string>>;
  readonly close: Readonly<Record<PromptRole, string>>;
  readonly generation: string;
}

/** Heading of the knowledge block. */
export const KNOWLEDGE_LABEL = 'Knowledge:';
/** What follows a chat prompt's knowledge block, before the message it answers. */
export const QUESTION_LABEL = 'Question: ';

/** What may go into one prompt. */
export interface PromptParts {
  /** Knowledge passages (and a custom handler's facts), most relevant first. */
  passages: ReadonlyArray<{ title?: string; body: string }>;
  /** Recent turns of the conversation, oldest first. */
  turns: readonly ConversationTurn[];
  /** The new message. */
  text: string;
  /** Instructions for the model (a client's system messages), placed first. */
  instructions?: string;
}

/** The prompt as the model receives it, and what went into it. */
export interface EncodedPrompt {
  /** Token ids; with `maxNewTokens` they fit the model's window. */
  ids: number[];
  /** Tokens to generate: the request's, lowered when the window is smaller (at least 1). */
  maxNewTokens: number;
  /** How many passages, from the first, were kept. */
  passages: number;
  /** How many turns, from the newest, were kept. */
  turns: number;
  /** Whether the instructions were kept. */
  instructions: boolean;
}

/** A passage as one line of the knowledge block. */
export function passageLine(p: { title?: string; body: string }): string {
  const body = p.body.replace(/\s*\n\s*/g, ' ').trim();
  return p.title ? `- ${p.title}: ${body}` : `- ${body}`;
}

/** Cuts a passage to `max` characters at a word boundary (anywhere in text without spaces, such as Chinese). */
export function clipPassage(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}
