import type { Message } from '../contract/message-contract.js';
import { AvaError, HandlerError, StorageError, errorMessageOf } from '../errors/errors.js';
import { runHandler } from './custom-handler.js';
import type { Meaning } from '../embedding/text-embedder.js';
import { IntentClassifier, type LexicalEvidence } from '../intent/intent-classifier.js';
import { localize, type IntentCatalog } from '../intent/intent-types.js';
import { renderTemplate } from '../intent/template.js';
import { statusReply } from './status-reply.js';
import type { KnowledgeBase } from '../knowledge/knowledge-base.js';
import { checkInput } from '../language/input-check.js';
import { languageOf } from '../language/search-terms.js';
import { messageMeanings } from './message-meanings.js';
import { classifierSemantics, type PlannerSemantics } from './planner-semantics.js';
import { clipPassage } from './prompt-parts.js';
import { filledSlots, type Slots } from './dialogue-slots.js';
import type { DialogueState } from './dialogue-state.js';

/** How a message's intent was recognised, as stored on its reply. */
export interface Recognition {
  confidence: number;
  ranking: Array<{ name: string; confidence: number }>;
  reason?: string;
}

/** A passage or fact to put into the prompt. */
export interface PromptPassage {
  /** Knowledge entry id; absent for a custom handler's facts. */
  id?: string;
  title?: string;
  body: string;
}

/** What to do with one message, and the slots it filled (recorded on its turn, carried by the conversation). */
export type ReplyPlan = { intent: string; recognition: Recognition; slots: Slots } & (
  | { kind: 'reply'; text: string; passageIds?: string[] }
  | { kind: 'generate'; passages: PromptPassage[]; instructions?: string }
  | { kind: 'fail'; error: AvaError }
);

/** Settings of the planner. */
export interface ReplyPlannerOptions {
  intentThreshold: number;
  kbTopK: number;
  kbPassageChars: number;
  handlerTimeoutMs: number;
  /**
   * Languages the model writes (`en` for SmolLM2); absent: any. A message in another language that would reach the
   * model is answered from the knowledge base or with the intents file's `replies.modelLanguage` instead, never with
   * text in the wrong language.
   */
  modelLanguages?: readonly string[];
}

/**
 * The worker's parse step after the contract: decides for each message whether it is unreadable (a "please
 * rephrase" reply, no model), which intent it carries, and what answers it: a template, the dialogue state, an
 * operator's module, or the model with or without knowledge passages.
 */
export class ReplyPlanner {
  private readonly classifier: IntentClassifier;

  constructor(
    private readonly catalog: IntentCatalog,
    private readonly opts: ReplyPlannerOptions,
    private readonly knowledge?: KnowledgeBase,
    private readonly dialogue?: DialogueState,
    private readonly semantics?: PlannerSemantics,
  ) {
    this.classifier = new IntentClassifier(catalog.intents, {
      threshold: opts.intentThreshold,
      semantic: classifierSemantics(semantics),
    });
  }

  /**
   * Plans a batch's messages: the readable ones that need their meaning are embedded together, one encoder call per
   * language, then each is planned with its meaning. A message
   * needs its meaning unless its words settle an intent that retrieves nothing (a template, the status, the model
   * alone). An encoder failure leaves the batch to lexical recognition, logged; it never fails a message.
   */
  async planAll(items: ReadonlyArray<{ message: Message; queuedAt: Date; carried?: Slots }>): Promise<ReplyPlan[]> {
    // Each recognisable message's words are weighed once, for the choice to embed it and for its recognition.
    const evidence = items.map(({ message: m }) =>
      (m.mode ?? 'assistant') === 'assistant' && checkInput(m.text).ok ? this.classifier.evidence(m.text) : undefined,
    );
    const meanings = await this.embed(
      items.map((i) => i.message.text),
      evidence,
    );
    return Promise.all(
      items.map(({ message, queuedAt, carried }, k) =>
        this.plan(message, queuedAt, { meaning: meanings[k], evidence: evidence[k], carried: carried ?? {} }),
      ),
    );
  }

  /**
   * How surely each text names an intent (the recogniser's confidence in its best one, by words and meaning; 0 for
   * unreadable text): what a voice message's hypotheses are rescored by. Embeds the texts in one call.
   */
  async intentConfidences(texts: readonly string[]): Promise<number[]> {
    const evidence = texts.map((t) => (checkInput(t).ok ? this.classifier.evidence(t) : undefined));
    const meanings = await this.embed(texts, evidence);
    return texts.map((t, k) => {
      const e = evidence[k];
      return e ? this.classifier.recognize(t, meanings[k], e).confidence : 0;
    });
  }

  /**
   * Whether a message's words settle that it asks about the state of the user's earlier messages (decisively, where
   * meaning is consulted too): such a question is answered from that state at once, without waiting for the earlier
   * messages to be answered first.
   */
  asksForStatus(text: string): boolean {
    if (!checkInput(text).ok) return false;
    const evidence = this.classifier.evidence(text);
    const r = this.classifier.recognize(text, undefined, evidence);
    return (
      this.classifier.definition(r.name)?.handler === 'status' &&
      (this.classifier.decisiveIntent(evidence) === r.name || !this.semantics?.languages[languageOf(text)])
    );
  }

  /**
   * Whether a message's embedding can change its plan: its intent (the meaning must support words that no keyword or
   * pattern backs), or the knowledge retrieved for it.
   */
  private needsMeaning(evidence: LexicalEvidence): boolean {
    const decided = this.classifier.decisiveIntent(evidence);
    if (decided === undefined || !evidence.named.has(decided)) return true;
    const handler = this.classifier.definition(decided)?.handler;
    return handler === 'knowledge' || handler === 'custom';
  }

  /** The meanings of the messages with evidence (recognisable ones) whose meaning can change their plan. */
  private async embed(
    texts: readonly string[],
    evidence: ReadonlyArray<LexicalEvidence | undefined>,
  ): Promise<Array<Meaning | undefined>> {
    if (!this.semantics) return new Array<Meaning | undefined>(texts.length);
    const encoders = Object.fromEntries(
      Object.entries(this.semantics.languages).map(([language, { embedder }]) => [language, embedder]),
    );
    const wanted = evidence.map((e) => e !== undefined && this.needsMeaning(e));
    return messageMeanings(texts, wanted, encoders, this.semantics.log);
  }

  /**
   * Plans one message, enqueued at `queuedAt`, with its meaning and its words' evidence when the batch has them. A
   * failing handler becomes a `fail` plan for that message alone; only a
   * {@link StorageError} (the database unreachable while reading the dialogue state) is thrown, to retry the batch.
   */
  private async plan(
    message: Message,
    queuedAt: Date,
    context: { meaning?: Meaning; evidence?: LexicalEvidence; carried: Slots },
  ): Promise<ReplyPlan> {
    const { meaning, carried } = context;
    // Sent to the model alone: any text is a prompt, and no intent, knowledge or handler takes part.
    if (message.mode && message.mode !== 'assistant')
      return {
        kind: 'generate',
        intent: 'model',
        recognition: { confidence: 1, ranking: [], reason: `mode ${message.mode}` },
        slots: {},
        passages: [],
      };
    const language = languageOf(message.text);
    const check = checkInput(message.text);
    if (!check.ok) {
      return {
        kind: 'reply',
        intent: 'invalid',
        recognition: { confidence: 1, ranking: [], reason: check.reason },
        slots: {},
        text: localize(this.catalog.invalidReply, language),
      };
    }
    const evidence = context.evidence ?? this.classifier.evidence(message.text);
    const r = this.classifier.recognize(message.text, meaning, evidence);
    const recognition: Recognition = { confidence: r.confidence, ranking: r.ranking };
    const filled = filledSlots(message.text, evidence, this.catalog.slotPatterns);
    const base = { intent: r.name, recognition, slots: filled };
    // What the handler sees: the conversation's slots, updated by this message (its intent's own captures first).
    const slots = { ...carried, ...filled, ...r.slots };
    const def = this.classifier.definition(r.name);
    try {
      // No intent owns the message: the model answers, with what the knowledge base holds close to it in meaning.
      if (!def) return this.generate(base, message, language, this.passages(message.text, meaning, true));
      switch (def.handler) {
        case 'template':
          return {
            ...base,
            kind: 'reply',
            text: renderTemplate(localize(def.reply, language), message, slots, this.catalog.vars),
          };
        case 'status':
          return { ...base, kind: 'reply', text: await this.statusText(message, queuedAt, language) };
        case 'knowledge': {
          const best =
            def.answer === 'entry' && this.opts.kbTopK > 0
              ? this.knowledge?.top(message.text, 1, meaning)[0]
              : undefined;
          if (best) return { ...base, kind: 'reply', text: best.body, passageIds: [best.id] };
          return this.generate(base, message, language, this.passages(message.text, meaning));
        }
        case 'custom': {
          const context = { message, intent: { name: r.name, confidence: r.confidence, slots }, language };
          const out = await runHandler(def, context, this.opts.handlerTimeoutMs);
          if ('reply' in out) return { ...base, kind: 'reply', text: out.reply };
          const facts = (out.facts ?? []).map((body) => ({ body }));
          return this.generate(base, message, language, [...facts, ...this.passages(message.text, meaning)]);
        }
        case 'generate':
          return this.generate(base, message, language, []);
      }
    } catch (err) {
      // The database failing under the status handler is transient: the whole batch goes back for a retry.
      if (err instanceof StorageError) throw err;
      return {
        ...base,
        kind: 'fail',
        error:
          err instanceof AvaError ? err : new HandlerError(`intent ${r.name}: ${errorMessageOf(err)}`, { cause: err }),
      };
    }
  }

  /**
   * A plan for the model, with the shop's persona as its instructions. For a language the model does not write: an
   * intent's best passage (or a handler's facts) as the reply, else the intents file's `replies.modelLanguage`. A
   * message no intent owns gets the fallback even when words of it retrieve an entry: in Chinese one shared
   * character is enough ("天空为什么是蓝色的" finds the entry on failed payments through "为").
   */
  private generate(
    base: Pick<ReplyPlan, 'intent' | 'recognition' | 'slots'>,
    message: Message,
    language: 'en' | 'zh',
    passages: PromptPassage[],
  ): ReplyPlan {
    const languages = this.opts.modelLanguages;
    if (languages && !languages.includes(language)) {
      const best = base.intent === 'unknown' ? undefined : passages[0];
      if (best?.id) return { ...base, kind: 'reply', text: best.body, passageIds: [best.id] };
      if (best) return { ...base, kind: 'reply', text: passages.map((p) => p.body).join('\n') };
      return { ...base, kind: 'reply', text: localize(this.catalog.modelLanguageReply, language) };
    }
    const persona =
      this.catalog.persona && renderTemplate(localize(this.catalog.persona, language), message, {}, this.catalog.vars);
    return { ...base, kind: 'generate', passages, ...(persona ? { instructions: persona } : {}) };
  }

  private passages(text: string, meaning?: Meaning, related = false): PromptPassage[] {
    if (!this.knowledge || this.opts.kbTopK === 0) return [];
    return this.knowledge
      .top(text, this.opts.kbTopK, meaning, related)
      .map((p) => ({ id: p.id, title: p.title, body: clipPassage(p.body, this.opts.kbPassageChars) }));
  }

  /** The state of the messages the user sent before this one in the same conversation. */
  private async statusText(message: Message, queuedAt: Date, language: 'en' | 'zh'): Promise<string> {
    if (!this.dialogue) return statusReply([], language);
    const messages = await this.dialogue.conversationMessages(message.conversationId);
    return statusReply(
      messages.filter((m) => m.messageId !== message.messageId && m.queuedAt < queuedAt),
      language,
    );
  }
}
