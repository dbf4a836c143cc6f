import type { DialogueView } from '../conversation/dialogue-state.js';

/** A conversation as JSON travels it: dates as ISO strings. */
type Serialized = Omit<DialogueView, 'createdAt' | 'updatedAt' | 'turns' | 'messages'> & {
  updatedAt: string | Date;
  turns: Array<{ messageId: string; user: string; assistant: string; intent?: string; at: string | Date }>;
  messages: Array<{
    messageId: string;
    status: string;
    intent?: string;
    queuedAt: string | Date;
    finishedAt?: string | Date;
    error?: { code: string };
  }>;
};

/** One conversation for a terminal: its turns with their intents, then the status of its recent messages. */
export function conversationText(view: Serialized): string {
  const time = (d: string | Date | undefined) => (d ? new Date(d).toISOString().replace('T', ' ').slice(0, 19) : '-');
  const lines = [
    `conversation ${view._id} (user ${view.userId}), last activity ${time(view.updatedAt)} UTC`,
    '',
    `turns (${view.turns.length}, oldest first):`,
  ];
  for (const t of view.turns) {
    lines.push(`  ${time(t.at)}  [${t.intent ?? '-'}]`, `    You> ${t.user}`, `    Bot> ${t.assistant}`);
  }
  lines.push('', `messages (${view.messages.length}):`);
  for (const m of view.messages) {
    const end = m.status === 'failed' ? ` ${m.error?.code ?? ''}` : m.finishedAt ? ` at ${time(m.finishedAt)}` : '';
    lines.push(`  ${m.messageId}  ${m.status}${end}  intent ${m.intent ?? '-'}  queued ${time(m.queuedAt)}`);
  }
  return lines.join('\n');
}
