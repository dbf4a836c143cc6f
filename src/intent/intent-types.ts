import type { Message } from '../contract/message-contract.js';
import type { LinearPattern } from './linear-pattern.js';

/** A text in one or both languages; a plain string serves every language. */
export type LocalizedText = string | { en?: string; zh?: string };

/** What a custom handler sees. */
export interface HandlerContext {
  /** The message, as it passed the contract: its ids as its tenant sent them, and its `tenant`. */
  message: Message;
  /** The recognised intent and the values its patterns captured. */
  intent: { name: string; confidence: number; slots: Readonly<Record<string, string>> };
  /** `en` or `zh`: the language to answer in. */
  language: 'en' | 'zh';
}

/**
 * What a custom handler returns: a reply to store as it is, or a request to generate, with facts of its own (an
 * order's state, say) put into the prompt the way knowledge passages are.
 */
export type HandlerResult = { reply: string } | { generate: true; facts?: string[] };

/** A custom handler module: one exported function. */
export interface IntentHandlerModule {
  handle(context: HandlerContext): HandlerResult | Promise<HandlerResult>;
}

/**
 * How an intent is answered, with what that handler needs: a template's reply (`{slot}` or `{slot|fallback}`
 * placeholders), a knowledge intent's way of answering, a custom handler's loaded module.
 */
export type IntentAnswer =
  | { handler: 'generate' }
  | { handler: 'status' }
  | { handler: 'template'; reply: LocalizedText }
  | {
      handler: 'knowledge';
      /**
       * `generate` puts the best entries into the prompt; `entry` answers with the best entry's text itself (as FAQ
       * bots and retrieval intents do), generating only when no entry matches.
       */
      answer: 'generate' | 'entry';
    }
  | { handler: 'custom'; module: IntentHandlerModule; /** Its path, for logs. */ modulePath: string };

/** One intent as loaded from the intents file: how it is recognised, and how it is answered. */
export type IntentDefinition = IntentAnswer & {
  name: string;
  examples: { en: readonly string[]; zh: readonly string[] };
  keywords: readonly string[];
  patterns: readonly LinearPattern[];
};

/** An intent answered by a handler module of its own. */
export type CustomIntent = Extract<IntentDefinition, { handler: 'custom' }>;

/** The whole intents file. */
export interface IntentCatalog {
  /** The file it came from. */
  file: string;
  intents: readonly IntentDefinition[];
  /** Reply to a message that cannot be understood. */
  invalidReply: LocalizedText;
  /** Reply to a message in a language the model does not write, when the knowledge base has nothing for it. */
  modelLanguageReply: LocalizedText;
  /** Who the assistant is, for the model's system prompt (`{var}` placeholders as in templates). */
  persona?: LocalizedText;
  /**
   * Questions about other things, per language (the "none" class): weighed by meaning against the intents' examples,
   * never matched by words.
   */
  offTopic: { en: readonly string[]; zh: readonly string[] };
  /**
   * The intents file's `slots`: patterns whose named groups fill a conversation's slots (a product, an address)
   * beside the intents' own patterns (an order number), whichever intent is recognised.
   */
  slotPatterns: readonly LinearPattern[];
  /** Named values every template may use, such as the shop's name. */
  vars: Readonly<Record<string, string>>;
}

/** Picks the text for a language, falling back to the other one. */
export function localize(text: LocalizedText, language: 'en' | 'zh'): string {
  if (typeof text === 'string') return text;
  return text[language] ?? text.en ?? text.zh ?? '';
}
