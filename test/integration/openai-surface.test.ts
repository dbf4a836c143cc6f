import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEncoder } from '../../src/embedding/load-encoder.js';
import type { SentenceEncoder } from '../../src/embedding/sentence-encoder.js';
import { CountingGenerator } from '../helpers/counting-generator.js';
import { startApiWorld } from '../helpers/api-world.js';
import { ENCODER_DIR, ROOT } from '../helpers/paths.js';
import { silentLog } from '../helpers/services.js';

// The sample shop's intents, so that some replies are templates the model never writes.
const WRITER = 'openai-surface-0123456789abcdef';
const GREETING = "Hello! I'm AVA, the assistant of Maple & Pine Home Goods. How can I help you today?";
const GREETING_ZH = '您好！我是枫松家居的智能助手 AVA，请问有什么可以帮您？';
let world: Awaited<ReturnType<typeof startApiWorld>>;
let counting: CountingGenerator;
let client: OpenAI;
let encoder: SentenceEncoder;
beforeAll(async () => {
  world = await startApiWorld(
    'oaisurface',
    {
      AVA_API_TOKENS: `app:${WRITER}:enqueue+read:default`,
      AVA_API_RATE_LIMIT: '10000',
      AVA_MAX_NEW_TOKENS: '8',
      AVA_INTENTS_FILE: path.join(ROOT, 'config/intents.yaml'),
    },
    (g) => (counting = new CountingGenerator(g)),
  );
  client = new OpenAI({ apiKey: WRITER, baseURL: `${await world.listen()}/v1`, maxRetries: 0 });
  // The encoder as the API loads it (int8 where it holds), to compare its embeddings with.
  encoder = await openEncoder(ENCODER_DIR, world.config, silentLog);
}, 120_000);
afterAll(async () => {
  await encoder?.close();
  await world?.close();
});

const tokens = (text: string) => world.generator.tokenizer.encode(text);
const stored = (id: string) => world.database.replies.findOne({ _id: id });
const maxDifference = (a: readonly number[], b: Float32Array) => Math.max(...a.map((x, k) => Math.abs(x - b[k])));
const user = (content: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content }];

it('lists the assistant, the raw model and the sentence encoder', async () => {
  expect((await client.models.list()).data.map((m) => m.id)).toEqual(['tiny', 'tiny-raw', 'all-MiniLM-L6-v2']);
});

describe('a reply the model did not write', () => {
  it('reports the usage a generated one would: the prompt as the model would see it, the reply in its tokens', async () => {
    const r = await client.chat.completions.create({ model: 'tiny', messages: user('Hello') });
    expect(r.choices[0]).toMatchObject({ message: { content: GREETING }, finish_reason: 'stop' });
    const prompt = tokens('User: Hello\nAssistant:').length;
    expect(r.usage).toEqual({
      prompt_tokens: prompt,
      completion_tokens: tokens(GREETING).length,
      total_tokens: prompt + tokens(GREETING).length,
    });
    // The model did nothing (its counts stay 0, as metrics read them); the client is told what it used.
    expect(await stored(r.id)).toMatchObject({
      intent: 'greeting',
      tokens: { prompt: 0, generated: 0 },
      usage: { prompt, completion: tokens(GREETING).length },
    });
    expect(counting.prompts.some((p) => p.endsWith('User: Hello\nAssistant:'))).toBe(false);
  });

  it('is cut at max_tokens on a token boundary with finish reason length, streamed or not, never inside a character', async () => {
    const cut = await client.chat.completions.create({ model: 'tiny', messages: user('Hello'), max_tokens: 5 });
    expect(cut.choices[0].finish_reason).toBe('length');
    expect(cut.choices[0].message.content).toBe(world.generator.tokenizer.decode(tokens(GREETING).slice(0, 5)));
    expect(cut.usage!.completion_tokens).toBe(5);
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: user('Hello'),
      max_completion_tokens: 5,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect([text, finish]).toEqual([cut.choices[0].message.content, 'length']);
    // A Chinese character is several byte-level tokens: a budget that ends inside one keeps the characters before it.
    for (const budget of [1, 2, 3, 7]) {
      const zh = await client.chat.completions.create({ model: 'tiny', messages: user('你好'), max_tokens: budget });
      const content = zh.choices[0].message.content!;
      expect(GREETING_ZH.startsWith(content) && !content.includes('\uFFFD'), `${budget}: ${content}`).toBe(true);
      expect(zh.usage!.completion_tokens).toBe(tokens(content).length);
      expect(zh.usage!.completion_tokens).toBeLessThanOrEqual(budget);
    }
  });

  it('ends before a stop string', async () => {
    const r = await client.chat.completions.create({ model: 'tiny', messages: user('Hello'), stop: ['AVA'] });
    expect(r.choices[0]).toMatchObject({ message: { content: "Hello! I'm " }, finish_reason: 'stop' });
  });
});

it("puts system messages before the dialogue as the model's instructions, and counts them", async () => {
  const plain = await client.chat.completions.create({
    model: 'tiny',
    messages: user('tell me a joke'),
    max_tokens: 2,
  });
  const instructed = await client.chat.completions.create({
    model: 'tiny',
    messages: [
      { role: 'system', content: 'Answer like a pirate.' },
      { role: 'developer', content: 'Keep it short.' },
      { role: 'user', content: 'tell me a joke' },
    ],
    max_tokens: 2,
  });
  // The deployment's persona (the intents file's) comes first, then the client's instructions, then the dialogue.
  const prompt = counting.prompts.find((p) => p.includes('Answer like a pirate.'))!;
  expect(prompt).toMatch(/^You are AVA, the friendly assistant of Maple & Pine Home Goods/);
  expect(prompt.endsWith('\n\nAnswer like a pirate.\nKeep it short.\n\nUser: tell me a joke\nAssistant:')).toBe(true);
  // What is counted is what the model received.
  expect(instructed.usage!.prompt_tokens).toBe(tokens(prompt).length);
  const plainPrompt = counting.prompts.find((p) => p.endsWith('\n\nUser: tell me a joke\nAssistant:') && p !== prompt)!;
  expect(plain.usage!.prompt_tokens).toBe(tokens(plainPrompt).length);
  expect(await stored(instructed.id)).toMatchObject({ intent: 'chitchat' });
});

it('sends the raw model a chat with no intents, and a text completion as the whole prompt', async () => {
  const chat = await client.chat.completions.create({ model: 'tiny-raw', messages: user('Hello'), max_tokens: 3 });
  expect(chat.model).toBe('tiny-raw');
  expect(await stored(chat.id)).toMatchObject({
    intent: 'model',
    tokens: { prompt: tokens('User: Hello\nAssistant:').length },
  });
  expect(counting.prompts.filter((p) => p === 'User: Hello\nAssistant:')).toHaveLength(1);
  const text = await client.completions.create({
    model: 'tiny-raw',
    prompt: 'Once upon a time, in a lighthouse',
    max_tokens: 3,
  });
  expect(counting.prompts).toContain('Once upon a time, in a lighthouse');
  expect(text.usage).toMatchObject({ prompt_tokens: tokens('Once upon a time, in a lighthouse').length });
  expect(text.usage!.completion_tokens).toBeLessThanOrEqual(3);
  // Through the assistant, the same words are a message to answer.
  await client.completions.create({ model: 'tiny', prompt: 'Once upon a time, in a lighthouse', max_tokens: 3 });
  expect(counting.prompts.filter((p) => p.includes('Once upon a time, in a lighthouse'))).toHaveLength(2);
});

describe('embeddings', () => {
  const texts = ['Where is my parcel?', '你好，请问几点开门？', 'a'.repeat(40)];

  it("are the encoder's own, as floats or base64, with usage", async () => {
    const expected = await encoder.embed(texts);
    const usage = encoder.tokenCounts(texts).reduce((a, b) => a + b, 0);
    // The SDK asks for base64 unless told otherwise, and decodes it.
    const viaBase64 = await client.embeddings.create({ model: 'all-MiniLM-L6-v2', input: texts });
    const viaFloat = await client.embeddings.create({
      model: 'all-MiniLM-L6-v2',
      input: texts,
      encoding_format: 'float',
    });
    for (const r of [viaBase64, viaFloat]) {
      expect(r.model).toBe('all-MiniLM-L6-v2');
      expect(r.usage).toEqual({ prompt_tokens: usage, total_tokens: usage });
      expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
      // Another ONNX Runtime session of the same graph, on another thread: equal to float32 rounding (a unit in the
      // last place moves with the batch's padding and the thread's float state).
      r.data.forEach((d, i) => expect(maxDifference(d.embedding, expected[i])).toBeLessThan(1e-6));
    }
    const one = await client.embeddings.create({
      model: 'all-MiniLM-L6-v2',
      input: texts[0],
      encoding_format: 'float',
    });
    expect(one.data).toHaveLength(1);
    expect(maxDifference(one.data[0].embedding, (await encoder.embed([texts[0]]))[0])).toBeLessThan(1e-6);
  });

  it('refuse what the encoder cannot do, naming the field', async () => {
    const refused = [
      [{ model: 'all-MiniLM-L6-v2', input: ['fine', 'word '.repeat(400)] }, 400, 'input[1]'],
      [{ model: 'all-MiniLM-L6-v2', input: 'fine', dimensions: 64 }, 400, 'dimensions'],
      [{ model: 'all-MiniLM-L6-v2', input: [1, 2, 3] }, 400, 'input'],
      [{ model: 'all-MiniLM-L6-v2', input: [] }, 400, 'input'],
      [{ model: 'text-embedding-3-small', input: 'fine' }, 404, 'model'],
    ] as const;
    for (const [body, status, param] of refused) {
      await expect(client.embeddings.create(body as never), JSON.stringify(body).slice(0, 80)).rejects.toMatchObject({
        status,
        error: { param },
      });
    }
  });
});
