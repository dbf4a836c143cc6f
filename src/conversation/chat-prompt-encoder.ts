import {
  KNOWLEDGE_LABEL,
  passageLine,
  type EncodedPrompt,
  type PromptFrame,
  type PromptParts,
  type PromptRole,
} from './prompt-parts.js';

/**
 * The prompt of a chat model: one system message (the instructions, then `Knowledge:` and a `- title: body` line per
 * passage), a user and an assistant message per turn, the new message and the generation prompt, each message
 * framed as the model's chat template frames it. Contents are encoded as text by `piece` (special-token literals
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
    // The system message: its frame is paid by whichever of instructions and passages comes first.
    let system = false;
    const systemIds: number[] = [];
    const instructions = parts.instructions ? this.piece(parts.instructions) : [];
    if (instructions.length > 0 && instructions.length + framing('system') <= room) {
      room -= instructions.length + framing('system');
      systemIds.push(...instructions);
      system = true;
    }
    const passages: number[][] = [];
    for (const p of parts.passages) {
      const ids = this.piece(passageLine(p));
      const opening = passages.length === 0 ? this.heading.length + (system ? 2 * nl : framing('system')) : 0;
      if (ids.length + nl + opening > room) break;
      room -= ids.length + nl + opening;
      passages.push(ids);
    }
    if (passages.length > 0) {
      if (system) systemIds.push(...this.newline, ...this.newline);
      systemIds.push(...this.heading);
      for (const p of passages) systemIds.push(...this.newline, ...p);
    }
    const turns: number[][] = [];
    for (let i = parts.turns.length - 1; i >= 0; i--) {
      const t = parts.turns[i];
      const ids = [...this.message('user', this.piece(t.user)), ...this.message('assistant', this.piece(t.assistant))];
      if (ids.length > room) break;
      room -= ids.length;
      turns.unshift(ids);
    }
    const head = systemIds.length > 0 ? this.message('system', systemIds) : [];
    return this.result([...head, ...turns.flat()], text, maxNew, {
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
