import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { idOfKey } from '../contract/scoped-key.js';
import type { Message } from '../contract/message-contract.js';
import { HandlerError } from '../errors/errors.js';
import type { CustomIntent, HandlerContext, HandlerResult } from '../intent/intent-types.js';

const handlerResult = z.union([
  z.strictObject({ reply: z.string().trim().min(1) }),
  z.strictObject({ generate: z.literal(true), facts: z.array(z.string().trim().min(1)).max(20).optional() }),
]);

/**
 * Runs a custom intent's handler module on one message: its result checked ({ reply } or { generate: true, facts? }),
 * a throw, a wrong result or no answer within `timeoutMs` all a {@link HandlerError} for that message alone.
 */
export async function runHandler(
  def: CustomIntent,
  context: HandlerContext,
  timeoutMs: number,
): Promise<HandlerResult> {
  const timeout = new AbortController();
  const result = await Promise.race([
    // A handler sees the ids as the tenant sent them (the worker keys them by tenant), and the tenant.
    Promise.resolve().then(() => def.module.handle({ ...context, message: asSent(context.message) })),
    delay(timeoutMs, undefined, { signal: timeout.signal }).then(() => {
      throw new HandlerError(`intent ${def.name}: handler ${def.modulePath} did not answer within ${timeoutMs} ms`);
    }),
  ]).finally(() => timeout.abort());
  const parsed = handlerResult.safeParse(result);
  if (!parsed.success)
    throw new HandlerError(
      `intent ${def.name}: handler ${def.modulePath} returned ${JSON.stringify(result)?.slice(0, 200)}; expected { reply } or { generate: true, facts? }`,
    );
  return parsed.data;
}

function asSent(m: Message): Message {
  return { ...m, messageId: idOfKey(m.messageId), conversationId: idOfKey(m.conversationId) };
}
