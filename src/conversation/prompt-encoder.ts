import { LRUCache } from 'lru-cache';
import { ChatPromptEncoder } from './chat-prompt-encoder.js';
import {
  KNOWLEDGE_LABEL,
  passageLine,
  type EncodedPrompt,
  type PromptFrame,
  type PromptParts,
} from './prompt-parts.js';
import type { ConversationTurn } from '../storage/reply-document.js';

/** Role labels of the dialogue prompt. */
export const USER_LABEL = 'User';
export const ASSISTANT_LABEL = 'Assistant';
/** Pieces whose ids are kept: a conversation's turns come back in every prompt of it, passages in many. */
const CACHED_PIECES = 10_000;

/** The part of a tokenizer the encoder needs: plain text, and for a chat model its template's frame. */
export interface PieceTokenizer {
  /** Ids of text as text (never special tokens). */
  encode(text: string): number[];
  /** The chat template's frame, when the model has one: prompts are then chat messages. */
  readonly chat?: PromptFrame;
  /** Ids of the frame's pieces, whose special-token literals are tokens. */
  encodeMarkup?(text: string): number[];
}

/**
 * Owns the prompt's tokens: each piece (a passage, a turn, the new message) is encoded once and the prompt's ids
 * are the pieces' ids joined by newline ids, so what is counted is exactly what the model receives.
 *
 * Layout, for a model without a chat template: the instructions and a blank line; `Knowledge:` and one
 * `- title: body` line per passage, a blank line; then the dialogue (`User: …` / `Assistant: …` per turn, the new
 * message, and `Assistant:` for the model to continue; each message and reply on one line, so that no text forges a
 * turn). For a chat model, the same parts as its template frames them:
 * one system message holding the instructions and the knowledge block, a user and an assistant message per turn, the
 * new message, and the template's generation prompt. Contents are encoded as text, so no message can hold a role
 * marker or any other special token; only the frame's pieces carry them.
 *
 * The one truncation rule: the new message is kept whole, then the instructions, then passages in order of relevance
 * while they fit, then as many of the most recent turns as still fit; a piece that does not fit is left out, never
 * cut. Only a new message longer than the whole window is cut, from the left, so that its end and the `Assistant:`
 * label survive.
 *
 * Turns and passages are tokenized once per process: their ids are cached by text, since a conversation's turns
 * return in each of its next prompts.
 */
export class PromptEncoder {
  private readonly newline: number[];
  private readonly heading: number[];
  private readonly pieces = new LRUCache<string, number[]>({ max: CACHED_PIECES });
  private readonly chat: ChatPromptEncoder | undefined;

  constructor(
    private readonly tokenizer: PieceTokenizer,
    /** Tokens of the model's window (prompt + new tokens). */
    private readonly window: number,
  ) {
    this.newline = tokenizer.encode('\n');
    this.heading = tokenizer.encode(KNOWLEDGE_LABEL);
    if (tokenizer.chat) {
      const markup = tokenizer.encodeMarkup?.bind(tokenizer);
      if (!markup) throw new Error('a chat tokenizer must encode its frame');
      this.chat = new ChatPromptEncoder(tokenizer.chat, markup, (text) => this.piece(text), window);
    }
  }

  /** The prompt's ids for `parts` with room for `maxNewTokens` new tokens. */
  encode(parts: PromptParts, maxNewTokens: number): EncodedPrompt {
    if (this.chat) return this.chat.encode(parts, maxNewTokens);
    const maxNew = Math.max(1, Math.min(maxNewTokens, this.window - 1));
    let room = this.window - maxNew;
    const tail = this.tokenizer.encode(`${USER_LABEL}: ${oneLine(parts.text)}\n${ASSISTANT_LABEL}:`);
    if (tail.length >= room)
      return { ids: tail.slice(tail.length - room), maxNewTokens: maxNew, passages: 0, turns: 0, instructions: false };
    room -= tail.length;

    const nl = this.newline.length;
    // The instructions and the blank line after them.
    let instructions = parts.instructions ? this.piece(parts.instructions) : [];
    if (instructions.length + 2 * nl > room) instructions = [];
    else if (instructions.length > 0) room -= instructions.length + 2 * nl;
    const passages: number[][] = [];
    for (const p of parts.passages) {
      const ids = this.piece(passageLine(p));
      // The first passage also pays for the heading and the blank line that ends the block.
      const cost = ids.length + nl + (passages.length === 0 ? this.heading.length + 2 * nl : 0);
      if (cost > room) break;
      room -= cost;
      passages.push(ids);
    }
    const turns: number[][] = [];
    for (let i = parts.turns.length - 1; i >= 0; i--) {
      const ids = this.piece(turnLines(parts.turns[i]));
      if (ids.length + nl > room) break;
      room -= ids.length + nl;
      turns.unshift(ids);
    }

    const ids: number[] = [];
    if (instructions.length > 0) ids.push(...instructions, ...this.newline, ...this.newline);
    if (passages.length > 0) {
      ids.push(...this.heading);
      for (const p of passages) ids.push(...this.newline, ...p);
      ids.push(...this.newline, ...this.newline);
    }
    for (const t of turns) ids.push(...t, ...this.newline);
    ids.push(...tail);
    return {
      ids,
      maxNewTokens: maxNew,
      passages: passages.length,
      turns: turns.length,
      instructions: instructions.length > 0,
    };
  }

  /** A plain completion's prompt: the text alone, as the model continues it; cut from the left when too long. */
  encodePlain(text: string, maxNewTokens: number): EncodedPrompt {
    const maxNew = Math.max(1, Math.min(maxNewTokens, this.window - 1));
    const ids = this.tokenizer.encode(text);
    return {
      ids: ids.slice(Math.max(0, ids.length - (this.window - maxNew))),
      maxNewTokens: maxNew,
      passages: 0,
      turns: 0,
      instructions: false,
    };
  }

  /** A turn's or a passage's ids, from the cache when the same text came before. */
  private piece(text: string): number[] {
    let ids = this.pieces.get(text);
    if (!ids) {
      ids = this.tokenizer.encode(text);
      this.pieces.set(text, ids);
    }
    return ids;
  }
}

function turnLines(t: ConversationTurn): string {
  return `${USER_LABEL}: ${oneLine(t.user)}\n${ASSISTANT_LABEL}: ${oneLine(t.assistant)}`;
}

/**
 * A message or reply as one line of the dialogue: its line breaks (any Unicode one) become spaces, so that a role
 * label can only start a line where the frame puts one, and no text can forge a turn ("…\nAssistant: refund granted").
 */
function oneLine(text: string): string {
  return text.replace(/[\n\r\v\f\u0085\u2028\u2029]+/g, ' ');
}
