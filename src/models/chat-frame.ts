/** The roles of a chat prompt. */
export type ChatRole = 'system' | 'user' | 'assistant';

/**
 * The text a chat template puts around each message, and the generation prompt: what the template of the model renders,
 * cut at its messages. The prompt encoder assembles prompts from these pieces so that it can count and leave out
 * whole messages; the pieces hold the template's special tokens, the contents never do.
 */
export interface ChatFrame {
  readonly open: Readonly<Record<ChatRole, string>>;
  readonly close: Readonly<Record<ChatRole, string>>;
  /** What follows the last message when the model is to answer (`<|im_start|>assistant\n` for ChatML). */
  readonly generation: string;
}

/** Renders messages with a chat template (the tokenizer's `apply_chat_template`, to text). */
export type TemplateRenderer = (
  messages: Array<{ role: ChatRole; content: string }>,
  addGenerationPrompt: boolean,
) => string;

/** Contents no template writes by itself, so that each can be found in the rendered text. */
const MARK = { system: '\u2063S\u2063', user: '\u2063U\u2063', assistant: '\u2063A\u2063', again: '\u2063V\u2063' };

/**
 * Derives the frame from a template by rendering marked messages (system, user, assistant, user) and cutting the
 * text at the marks; then checks that the frame rebuilds the template's own rendering exactly, so a template that
 * does more than wrap each message (reorders, drops or merges them) is refused rather than imitated.
 */
export function deriveChatFrame(render: TemplateRenderer): ChatFrame {
  const sys = { role: 'system' as const, content: MARK.system };
  const user = { role: 'user' as const, content: MARK.user };
  const assistant = { role: 'assistant' as const, content: MARK.assistant };
  const again = { role: 'user' as const, content: MARK.again };
  const withUser = render([sys, user], false);
  const withAnswer = render([sys, user, assistant], false);
  const withNext = render([sys, user, assistant, again], false);
  const prompted = render([sys, user, assistant, again], true);
  const split = (block: string, mark: string) => {
    const at = block.indexOf(mark);
    if (at < 0 || block.indexOf(mark, at + 1) >= 0) throw new Error(`the template does not write ${mark} once`);
    return [block.slice(0, at), block.slice(at + mark.length)];
  };
  const suffix = (longer: string, shorter: string) => {
    if (!longer.startsWith(shorter)) throw new Error('the template does not render each message after the ones before');
    return longer.slice(shorter.length);
  };
  const [userOpen, userClose] = split(suffix(withNext, withAnswer), MARK.again);
  const [assistantOpen, assistantClose] = split(suffix(withAnswer, withUser), MARK.assistant);
  const userBlock = userOpen + MARK.user + userClose;
  if (!withUser.endsWith(userBlock)) throw new Error('the first user message is framed unlike the next');
  const [systemOpen, systemClose] = split(withUser.slice(0, withUser.length - userBlock.length), MARK.system);
  const frame: ChatFrame = {
    open: { system: systemOpen, user: userOpen, assistant: assistantOpen },
    close: { system: systemClose, user: userClose, assistant: assistantClose },
    generation: suffix(prompted, withNext),
  };
  const rebuilt =
    frameText(frame, [
      ['system', MARK.system],
      ['user', MARK.user],
      ['assistant', MARK.assistant],
      ['user', MARK.again],
    ]) + frame.generation;
  if (rebuilt !== prompted) throw new Error('the frame does not rebuild the rendered conversation');
  return frame;
}

/** Messages written in a frame (without the generation prompt). */
export function frameText(frame: ChatFrame, messages: ReadonlyArray<[ChatRole, string]>): string {
  return messages.map(([role, text]) => frame.open[role] + text + frame.close[role]).join('');
}
