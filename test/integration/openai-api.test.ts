import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiWorld } from '../helpers/api-world.js';
import { replyText, replyFinish } from '../helpers/reply-text.js';

const WRITER = 'openai-token-0123456789abcdef';
const READER = 'openai-reader-0123456789abcdef';
let world: Awaited<ReturnType<typeof startApiWorld>>;
let client: OpenAI;
let baseURL: string;
beforeAll(async () => {
  world = await startApiWorld('openai', {
    AVA_API_TOKENS: `app:${WRITER}:enqueue+read:default,dash:${READER}:read:default`,
    AVA_API_RATE_LIMIT: '10000',
    AVA_MAX_NEW_TOKENS: '16',
  });
  baseURL = `${await world.listen()}/v1`;
  client = new OpenAI({ apiKey: WRITER, baseURL, maxRetries: 0 });
});
afterAll(async () => world.close());

const stored = (id: string) => world.database.replies.findOne({ _id: id });

it('lists the served model and answers a chat completion with the stored reply, its usage and finish reason', async () => {
  const models = await client.models.list();
  expect(models.data.map((m) => m.id)).toEqual(['tiny', 'tiny-raw', 'all-MiniLM-L6-v2']);
  const completion = await client.chat.completions.create({
    model: 'tiny',
    messages: [
      { role: 'system', content: 'You are a shop assistant.' },
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi! How can I help?' },
      { role: 'user', content: 'Tell me about your opening hours' },
    ],
    max_tokens: 6,
    user: 'customer@example.com',
  });
  expect(completion.object).toBe('chat.completion');
  const doc = await stored(completion.id);
  expect(doc).toMatchObject({ status: 'replied', tokens: { generated: completion.usage!.completion_tokens } });
  expect(completion.choices[0].message).toMatchObject({ role: 'assistant', content: replyText(doc) });
  expect(completion.choices[0].finish_reason).toBe(replyFinish(doc));
  expect(completion.usage!.completion_tokens).toBeLessThanOrEqual(6);
  expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
  // The client's dialogue is the history: its turns are in the prompt, so the prompt is longer than the message alone.
  const alone = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'Tell me about your opening hours' }],
    max_tokens: 6,
  });
  expect(completion.usage!.prompt_tokens).toBeGreaterThan(alone.usage!.prompt_tokens);
  // A user that is not an AVA id is kept as a stable hash.
  expect(doc!.userId).toMatch(/^user-[0-9a-f]{24}$/);
});

it('streams chunks that concatenate to exactly the stored text, ending with the finish reason and [DONE]', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'user', content: 'Tell me a story about the sea' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let id = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    id = chunk.id;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
  }
  const doc = await stored(id);
  expect(text).toBe(replyText(doc));
  expect(text.length).toBeGreaterThan(0);
  expect(finish).toBe(replyFinish(doc));
  expect(usage).toEqual({
    prompt_tokens: doc!.tokens.prompt,
    completion_tokens: doc!.tokens.generated,
    total_tokens: doc!.tokens.prompt + doc!.tokens.generated,
  });
  // The legacy completions route streams the same way.
  const legacy = await client.completions.create({
    model: 'tiny',
    prompt: 'Once upon a time',
    max_tokens: 5,
    stream: true,
  });
  let legacyText = '';
  let legacyId = '';
  for await (const chunk of legacy) {
    legacyId = chunk.id;
    legacyText += chunk.choices[0]?.text ?? '';
  }
  expect(legacyText).toBe(replyText(await stored(legacyId)));
});

it('ends at a stop string: the text stops before it and the finish reason is stop', async () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'user', content: 'Where is my parcel? It has been a week.' },
  ];
  // Greedy and seeded: the same request gives the same text, so a piece of it can serve as the stop string.
  const free = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, temperature: 0 });
  const full = free.choices[0].message.content!;
  expect(full.length).toBeGreaterThan(6);
  const stop = full.slice(3, 6);
  const cut = full.slice(0, full.indexOf(stop));
  const stopped = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 16,
    temperature: 0,
    stop: [stop],
  });
  expect(stopped.choices[0].message.content).toBe(cut);
  expect(stopped.choices[0].finish_reason).toBe('stop');
  const streamed = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 16,
    temperature: 0,
    stop,
    stream: true,
  });
  let text = '';
  for await (const chunk of streamed) text += chunk.choices[0]?.delta.content ?? '';
  expect(text).toBe(cut);
});

it('answers a wrong token, a missing scope, an unknown model and a bad request with OpenAI errors', async () => {
  const wrong = new OpenAI({ apiKey: 'not-a-valid-token-0123456789', baseURL, maxRetries: 0 });
  await expect(
    wrong.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }),
  ).rejects.toMatchObject({ status: 401, error: { type: 'authentication_error', code: 'ERR_UNAUTHENTICATED' } });
  const reader = new OpenAI({ apiKey: READER, baseURL, maxRetries: 0 });
  await expect(
    reader.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }),
  ).rejects.toMatchObject({ status: 403, error: { type: 'permission_error' } });
  await expect(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
  ).rejects.toMatchObject({ status: 404, error: { code: 'model_not_found', param: 'model' } });
  const bad = [
    [{ model: 'tiny', messages: [] }, 'messages'],
    [{ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], temperature: 7 }, 'temperature'],
    [{ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100_000 }, 'max_tokens'],
    [{ model: 'tiny', messages: [{ role: 'assistant', content: 'hi' }] }, 'messages'],
    [{ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], n: 3 }, 'n'],
    [{ model: 'tiny', messages: [{ role: 'user', content: '   ' }] }, 'text'],
  ] as const;
  for (const [body, param] of bad) {
    await expect(client.chat.completions.create(body as never), JSON.stringify(body)).rejects.toMatchObject({
      status: 400,
      error: { type: 'invalid_request_error', param },
    });
  }
});
