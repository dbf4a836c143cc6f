/** One Server-Sent Event as a client sees it. */
export interface SseEvent {
  id?: string;
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever fields an event carries
  data: any;
}

/** Parses a whole SSE body (comment lines skipped). */
export function parseSse(body: string): SseEvent[] {
  return body
    .split('\n\n')
    .map((block) => block.split('\n').filter((l) => l && !l.startsWith(':')))
    .filter((lines) => lines.length > 0)
    .map((lines) => {
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      const id = field('id');
      return { ...(id ? { id } : {}), event: field('event') ?? 'message', data: JSON.parse(field('data') ?? 'null') };
    });
}

/** The text a client shows: token texts concatenated, restarted at each `reset`. */
export function shownText(events: readonly SseEvent[]): string {
  let text = '';
  for (const e of events) {
    if (e.event === 'reset') text = '';
    if (e.event === 'token') text += e.data.text;
  }
  return text;
}

/** Reads events from a fetch response as they arrive; `next(n)` resolves with the next n events. */
export function sseReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const queued: SseEvent[] = [];
  return {
    async next(n: number): Promise<SseEvent[]> {
      while (queued.length < n) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const cut = buffer.lastIndexOf('\n\n');
        if (cut >= 0) {
          queued.push(...parseSse(buffer.slice(0, cut)));
          buffer = buffer.slice(cut + 2);
        }
      }
      return queued.splice(0, n);
    },
    async rest(): Promise<SseEvent[]> {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
      }
      return [...queued.splice(0), ...parseSse(buffer)];
    },
    cancel: () => reader.cancel(),
  };
}
