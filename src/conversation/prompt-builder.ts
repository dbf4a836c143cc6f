import type { ConversationTurn } from '../contract/reply-document.js';

/** Role labels of the dialogue prompt. */
export const USER_LABEL = 'User';
export const ASSISTANT_LABEL = 'Assistant';
/** Heading of the knowledge block. */
export const KNOWLEDGE_LABEL = 'Knowledge';

/** Tokens below the budget from which the joined prompt is not re-counted (a seam costs at most a token or two). */
export const SEAM_MARGIN = 16;

/** What may go into one prompt. */
export interface PromptParts {
  /** Knowledge passages (and a custom handler's facts), most relevant first. */
  passages: ReadonlyArray<{ title?: string; body: string }>;
  /** Recent turns of the conversation, oldest first. */
  turns: readonly ConversationTurn[];
  /** The new message. */
  text: string;
}

/** How much room there is: the window left for the prompt and how to count a text's tokens. */
export interface PromptBudget {
  /** Tokens the prompt may use: the model's window minus the tokens to generate. */
  maxTokens: number;
  countTokens(text: string): number;
}

/** The prompt and what went into it. */
export interface BuiltPrompt {
  prompt: string;
  /** How many passages, from the first, were kept. */
  passages: number;
  /** How many turns, from the newest, were kept. */
  turns: number;
}

/**
 * The exact text sent to the model. Passages come first under a `Knowledge:` heading, then the dialogue: the turns,
 * then the new message and the assistant label for the model to continue. With a budget, the new message is kept
 * whole, then passages in order of relevance while they fit, then as many of the most recent turns as still fit;
 * the rest is left out rather than cut in the middle. Without one, everything goes in.
 */
export function buildPrompt(parts: PromptParts, budget?: PromptBudget): BuiltPrompt {
  const passages = parts.passages.map(passageLine);
  const turns = parts.turns.map(turnLines);
  const tail = `${USER_LABEL}: ${parts.text}\n${ASSISTANT_LABEL}:`;
  if (!budget) return { prompt: assemble(passages, turns, tail), passages: passages.length, turns: turns.length };

  // Pieces are counted apart; near the budget the total is checked at the end: BPE counts of joined texts differ from
  // the sum of their parts by a token or two at the seams, so the final check drops turns, then passages, until it
  // truly fits.
  let room = budget.maxTokens - budget.countTokens(tail);
  let keptPassages = 0;
  for (const p of passages) {
    const cost = budget.countTokens(p) + (keptPassages === 0 ? budget.countTokens(`${KNOWLEDGE_LABEL}:\n`) + 1 : 1);
    if (cost > room) break;
    room -= cost;
    keptPassages++;
  }
  let keptTurns = 0;
  for (let i = turns.length - 1; i >= 0; i--) {
    const cost = budget.countTokens(turns[i]) + 1;
    if (cost > room) break;
    room -= cost;
    keptTurns++;
  }
  // Far enough below the window, the seams cannot matter and the whole prompt is not counted again: counting is the
  // costly part of building prompts with long histories.
  if (room >= SEAM_MARGIN) return { prompt: assemble(passages.slice(0, keptPassages), turns.slice(turns.length - keptTurns), tail), passages: keptPassages, turns: keptTurns };
  for (;;) {
    const prompt = assemble(passages.slice(0, keptPassages), turns.slice(turns.length - keptTurns), tail);
    if (budget.countTokens(prompt) <= budget.maxTokens || keptTurns + keptPassages === 0) return { prompt, passages: keptPassages, turns: keptTurns };
    if (keptTurns > 0) keptTurns--;
    else keptPassages--;
  }
}

function passageLine(p: { title?: string; body: string }): string {
  const body = p.body.replace(/\s*\n\s*/g, ' ').trim();
  return p.title ? `- ${p.title}: ${body}` : `- ${body}`;
}

function turnLines(t: ConversationTurn): string {
  return `${USER_LABEL}: ${t.user}\n${ASSISTANT_LABEL}: ${t.assistant}`;
}

function assemble(passages: readonly string[], turns: readonly string[], tail: string): string {
  const dialogue = [...turns, tail].join('\n');
  return passages.length > 0 ? `${KNOWLEDGE_LABEL}:\n${passages.join('\n')}\n\n${dialogue}` : dialogue;
}
