import { cannedCompletion } from '../conversation/canned-completion.js';
import { PromptEncoder } from '../conversation/prompt-encoder.js';
import type { EncodedPrompt } from '../conversation/prompt-parts.js';
import type { GenerationRequest, TextGenerator } from '../generation/text-generator.js';
import type { ConversationTurn } from '../storage/reply-document.js';
import type { Answer, PlannedJob } from './batch-stages.js';

/** The conversations' recent turns, by conversation id. */
export type HistoryByConversation = ReadonlyMap<string, ConversationTurn[]>;

/**
 * Turns planned jobs into what answers them: an answer at once for a plan that needs no model, or a generation request
 * with its prompt (instructions, passages, history and text, within the model's window) for one that does.
 */
export class AnswerComposer {
  private readonly prompts: PromptEncoder;

  constructor(
    private readonly generator: Pick<TextGenerator, 'tokenizer' | 'window'>,
    private readonly maxNewTokens: number,
  ) {
    this.prompts = new PromptEncoder(generator.tokenizer, generator.window);
  }

  /**
   * A planned reply or failure as an answer; undefined for a plan that needs the model. A reply is bounded by the
   * message's token budget and stop strings and counted as if the model had written it.
   */
  withoutModel(p: PlannedJob, history: HistoryByConversation, startedAt: Date): Answer | undefined {
    const { job, key, plan } = p;
    if (plan.kind === 'fail') return { kind: 'plan-failed', job, key, planned: p, error: plan.error };
    if (plan.kind !== 'reply') return undefined;
    const reply = cannedCompletion(this.generator.tokenizer, plan.text, {
      maxTokens: p.message.generation?.maxNewTokens,
      stop: p.message.generation?.stop,
    });
    return {
      kind: 'canned',
      job,
      key,
      planned: p,
      text: reply.text,
      finishReason: reply.finishReason,
      usage: { prompt: this.prompt(p, history, startedAt).ids.length, completion: reply.tokens },
      passageIds: plan.passageIds ?? [],
    };
  }

  /** The generation request of a job the model answers, and the passages its prompt kept. */
  request(
    p: PlannedJob,
    history: HistoryByConversation,
    startedAt: Date,
  ): { request: GenerationRequest; passageIds: string[] } {
    const passages = p.plan.kind === 'generate' ? p.plan.passages : [];
    const { maxNewTokens: _, ...sampling } = p.message.generation ?? {};
    const prompt = this.prompt(p, history, startedAt);
    return {
      request: { ...sampling, promptIds: prompt.ids, maxNewTokens: prompt.maxNewTokens },
      passageIds: passages.slice(0, prompt.passages).flatMap((x) => (x.id ? [x.id] : [])),
    };
  }

  /** A job's prompt as the model sees it: plain text, or its instructions, passages, history and text. */
  private prompt(p: PlannedJob, history: HistoryByConversation, startedAt: Date): EncodedPrompt {
    const m = p.message;
    // A message may ask for fewer tokens than the operator's maximum, never for more.
    const maxNewTokens = Math.min(m.generation?.maxNewTokens ?? this.maxNewTokens, this.maxNewTokens);
    if (m.mode === 'text') return this.prompts.encodePlain(m.text, maxNewTokens);
    const passages = p.plan.kind === 'generate' ? p.plan.passages : [];
    // A dialogue sent with the message (an OpenAI-style client's) is the history; else the one AVA keeps.
    const turns = m.history
      ? m.history.map((t, i) => ({ messageId: `${m.messageId}.h${i}`, ...t, at: startedAt }))
      : (history.get(m.conversationId) ?? []);
    // The deployment's persona first, then a client's own instructions.
    const persona = p.plan.kind === 'generate' ? p.plan.instructions : undefined;
    const instructions = [persona, m.instructions].filter(Boolean).join('\n\n');
    return this.prompts.encode(
      { passages, turns, text: m.text, ...(instructions ? { instructions } : {}) },
      maxNewTokens,
    );
  }
}
