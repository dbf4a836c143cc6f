import {
  KNOWLEDGE_LABEL,
  QUESTION_LABEL,
  passageLine,
  type EncodedPrompt,
  type PromptFrame,
  type PromptParts,
  type PromptRole,
} from './prompt-parts.js';

/**
 * The prompt of a chat model: a system message (the instructions), a user and an assistant message per turn, then
 * the new message, preceded in its own user message by the knowledge (`Knowledge:`, a `- title: body` line per
 * passage, a blank line, `Question: `), and the generation prompt; each message framed as the model's chat template
 * frames it. The knowledge sits next to the question rather than in the system message: SmolLM2-135M stated the
 * fact of the right entry for 8 of 16 dev questions that way and for 2 of 16 from the system message
 * (test/fixtures/answers-dev.jsonl, greedy). Contents are encoded as text by `piece` (special-token literals
 * stay characters); only the frame's own pieces are encoded as markup.
 *
 * The truncation rule is the plain prompt's: the new message whole, then the instructions, then passages in order of
 * relevance while they fit, then the most recent turns that fit; a piece that does not fit is left out, never cut.
 * Only a new message longer than the window is cut, from the left, inside its frame.
 */
export class ChatPromptEncoder {
  private readonly open: Record<PromptRole, number[]>;
  private readonly close: Record<PromptRole, number[]>;
  private readonly generation: number[];
  private readonly newline: number[];
  private readonly heading: number[];

  constructor(
    frame: PromptFrame,
    markup: (text: string) => number[],
    private readonly piece: (text: string) => number[],
    private readonly window: number,
  ) {
    const each = (side: 'open' | 'close') =>
      ({
        system: markup(frame[side].system),
        user: markup(frame[side].user),
        assistant: markup(frame[side].assistant),
      }) as Record<PromptRole, number[]>;
    this.open = each('open');
    this.close = each('close');
    this.generation = markup(frame.generation);
    this.newline = piece('\n');
    this.heading = piece(KNOWLEDGE_LABEL);
  }

  encode(parts: PromptParts, maxNewTokens: number): EncodedPrompt {
    const maxNew = Math.max(1, Math.min(maxNewTokens, this.window - 1));
    let room = this.window - maxNew;
    const framing = (role: PromptRole) => this.open[role].length + this.close[role].length;
    const text = this.piece(parts.text);
    const tailCost = framing('user') + this.generation.length;
    if (text.length + tailCost >= room) {
      const kept = text.slice(text.length - Math.max(0, room - tailCost));
      return this.result([], kept, maxNew, { passages: 0, turns: 0, instructions: false });
    }
    room -= text.length + tailCost;

    const nl = this.newline.length;
    const instructions = parts.instructions ? this.piece(parts.instructions) : [];
    const system = instructions.length > 0 && instructions.length + framing('system') <= room;
    if (system) room -= instructions.length + framing('system');
    // The question's label is encoded with the message (`Question: …` as one text), so their boundary is natural.
    const question = parts.passages.length > 0 ? this.piece(`${QUESTION_LABEL}${parts.text}`) : text;
    const passages: number[][] = [];
    for (const p of parts.passages) {
      const ids = this.piece(passageLine(p));
      // The first passage also pays for the heading, the blank line and the question's label.
      const opening = passages.length === 0 ? this.heading.length + 2 * nl + question.length - text.length : 0;
      if (ids.length + nl + opening > room) break;
      room -= ids.length + nl + opening;
      passages.push(ids);
    }
    const turns: number[][] = [];
    for (let i = parts.turns.length - 1; i >= 0; i--) {
      const t = parts.turns[i];
      const ids = [...this.message('user', this.piece(t.user)), ...this.message('assistant', this.piece(t.assistant))];
      if (ids.length > room) break;
      room -= ids.length;
      turns.unshift(ids);
    }
    const asked: number[] = [];
    if (passages.length > 0) {
      asked.push(...this.heading);
      for (const p of passages) asked.push(...this.newline, ...p);
      asked.push(...this.newline, ...this.newline, ...question);
    } else asked.push(...text);
    const head = system ? this.message('system', instructions) : [];
    return this.result([...head, ...turns.flat()], asked, maxNew, {
      passages: passages.length,
      turns: turns.length,
      instructions: system,
    });
  }

  private message(role: PromptRole, ids: number[]): number[] {
    return [...this.open[role], ...ids, ...this.close[role]];
  }

  private result(
    before: number[],
    text: number[],
    maxNewTokens: number,
    kept: Omit<EncodedPrompt, 'ids' | 'maxNewTokens'>,
  ): EncodedPrompt {
    return { ids: [...before, ...this.message('user', text), ...this.generation], maxNewTokens, ...kept };
  }
}
