import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiWorld } from '../helpers/api-world.js';
import { UploadRepository } from '../../src/storage/upload-repository.js';
import { KnowledgeRepository } from '../../src/storage/knowledge-repository.js';
import { wavFile } from '../helpers/wav-header.js';

const TOKEN = 'voice-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
let world: Awaited<ReturnType<typeof startApiWorld>>;
let base: string;

/** An espeak-ng voice and speed, as 16-bit WAV. */
function speak(text: string, voice = 'en-us+f5', speed = 150): Buffer {
  return execFileSync('espeak-ng', ['-v', voice, '-s', String(speed), '--stdout', text]);
}

/** Any audio through Debian's ffmpeg: `args` say what comes out. */
function ffmpeg(input: Buffer | null, args: string[]): Buffer {
  return execFileSync(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', ...(input ? ['-i', 'pipe:0'] : []), ...args, 'pipe:1'],
    { input: input ?? undefined, maxBuffer: 64 * 1024 * 1024 },
  );
}

async function upload(
  id: string,
  audio: Buffer,
  fields: Record<string, string> = {},
  filename = 'voice.bin',
  to = base,
): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries({ messageId: id, conversationId: `conv-${id}`, userId: 'caller', ...fields }))
    form.set(k, v);
  form.set('audio', new Blob([new Uint8Array(audio)]), filename);
  return fetch(`${to}/v1/messages/audio`, { method: 'POST', body: form, headers: auth });
}

async function replyOf(id: string) {
  const res = await world.api.inject({ url: `/v1/messages/${id}?wait=25000`, headers: auth });
  return res.json();
}

beforeAll(async () => {
  world = await startApiWorld('voice', {
    // The default: Whisper base from models/whisper (the test setup converts it).
    AVA_ASR: 'auto',
    AVA_INTENTS_FILE: 'config/intents.yaml',
    AVA_API_TOKENS: `caller:${TOKEN}:enqueue+read+admin:default`,
    AVA_AUDIO_MAX_BYTES: String(10 * 1024 * 1024),
    AVA_AUDIO_MAX_SECONDS: '60',
    AVA_KB_REFRESH_MS: '300',
  });
  base = await world.listen();
});
afterAll(async () => world.close());

describe('voice messages, from upload to stored reply', () => {
  it('hears a WAV sent as multipart with Whisper base: the transcript is the message, routed to its intent, stored with engine, language and time', async () => {
    const res = await upload('v-wav', speak('where is my order', 'en-us+f5', 160), { language: 'en' });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(202);
    expect(body).toMatchObject({
      messageId: 'v-wav',
      status: 'queued',
      audio: { fileId: expect.stringMatching(/^[0-9a-f]{24}$/), contentType: 'audio/wav' },
    });
    const reply = await replyOf('v-wav');
    expect(reply).toMatchObject({
      status: 'replied',
      intent: 'order_status',
      transcript: { text: 'Where is my order?', engine: 'whisper', language: 'en' },
    });
    // The message named its language: nothing was detected. Whisper gives no confidence.
    expect(reply.transcript.languageProbability).toBeUndefined();
    expect(reply.transcript.confidence).toBeUndefined();
    expect(reply.transcript.ms).toBeGreaterThan(0);
    expect(reply.transcript.audioSeconds).toBeGreaterThan(0.5);
    // Which of beam search's hypotheses (beam 5, distinct texts) meaning chose, of how many.
    expect(reply.transcript.nbest.of).toBeGreaterThan(1);
    expect(reply.transcript.nbest.of).toBeLessThanOrEqual(5);
    expect(reply.transcript.nbest.chosen).toBeGreaterThanOrEqual(0);
    expect(reply.transcript.nbest.chosen).toBeLessThan(reply.transcript.nbest.of);
    // The transcript joins the conversation like typed text. A batch writes its turns after storing its replies (which
    // readers get first), so the turn may land a moment after the reply is read.
    await expect
      .poll(async () =>
        JSON.stringify((await world.api.inject({ url: '/v1/conversations/conv-v-wav', headers: auth })).json()),
      )
      .toContain('"user":"Where is my order?"');
    // Operations see recognition time and audio heard per engine (workers publish them with their 5 s heartbeat).
    await expect
      .poll(async () => (await world.api.inject({ url: '/metrics', headers: auth })).body, { timeout: 15_000 })
      .toMatch(/ava_recognition_seconds_count\{engine="whisper"\} [1-9]/);
    expect((await world.api.inject({ url: '/metrics', headers: auth })).body).toMatch(
      /ava_heard_audio_seconds_total\{engine="whisper"\} [0-9.]+/,
    );
    // The upload is in GridFS, under the id the job carried.
    expect((await new UploadRepository(world.database).get(body.audio.fileId))?.metadata).toEqual({
      contentType: 'audio/wav',
      messageId: 'v-wav',
      tenant: 'default',
    });
  });

  it('takes JSON with base64, and Ogg/Opus, WebM and MP3 as browsers and phones send them', async () => {
    const said = speak('how much is shipping');
    const formats: Array<[string, string[]]> = [
      ['ogg', ['-c:a', 'libopus', '-f', 'ogg']],
      ['webm', ['-c:a', 'libopus', '-f', 'webm']],
      ['mp3', ['-c:a', 'libmp3lame', '-f', 'mp3']],
    ];
    for (const [name, args] of formats) {
      const res = await world.api.inject({
        method: 'POST',
        url: '/v1/messages/audio',
        headers: auth,
        payload: {
          messageId: `v-${name}`,
          conversationId: 'c-json',
          userId: 'caller',
          audio: ffmpeg(said, args).toString('base64'),
        },
      });
      expect(res.statusCode, name).toBe(202);
    }
    for (const [name] of formats)
      expect(await replyOf(`v-${name}`), name).toMatchObject({
        status: 'replied',
        intent: 'shipping',
        transcript: { text: expect.stringMatching(/shipping/i) },
      });
  });

  it('answers bad audio with a clear error and costs no other message anything', async () => {
    const good = speak('thank you very much');
    const refused: Array<[string, Buffer, number, string]> = [
      ['not audio at all', Buffer.from('{"hello": "this is JSON, not sound"}'), 415, 'ERR_AUDIO_FORMAT'],
      [
        'claims WAV but is not',
        Buffer.concat([Buffer.from('RIFF\x24\x00\x00\x00WAVEjunk', 'latin1'), Buffer.alloc(64, 0x41)]),
        415,
        'ERR_AUDIO_FORMAT',
      ],
      ['a truncated WAV', wavFile(22050, good.subarray(44, 2044), 40_000), 400, 'ERR_AUDIO_TRUNCATED'],
      ['an odd sample rate', wavFile(3, Buffer.alloc(2000)), 400, 'ERR_AUDIO_SAMPLE_RATE'],
      ['ten minutes of WAV', wavFile(8000, Buffer.alloc(8000 * 2 * 600)), 400, 'ERR_AUDIO_TOO_LONG'],
      ['a 50 MB upload', Buffer.alloc(50 * 1024 * 1024, 1), 413, 'ERR_AUDIO_TOO_LARGE'],
    ];
    for (const [what, bytes, status, code] of refused) {
      const res = await upload(`bad-${code}-${status}`, bytes);
      expect(res.status, what).toBe(status);
      expect((await res.json()).error, what).toMatchObject({ code, message: expect.any(String) });
    }
    const big = await world.api.inject({
      method: 'POST',
      url: '/v1/messages/audio',
      headers: auth,
      payload: {
        messageId: 'bad-json-big',
        conversationId: 'c',
        userId: 'u',
        audio: Buffer.alloc(11 * 1024 * 1024).toString('base64'),
      },
    });
    expect(big.statusCode).toBe(413);
    const noFile = await world.api.inject({
      method: 'POST',
      url: '/v1/messages/audio',
      headers: auth,
      payload: { messageId: 'bad-fields', conversationId: 'c', userId: 'u', audio: 'not base64!' },
    });
    expect(noFile.json().error.message).toContain('body.audio');

    // What only decoding finds fails its own message, stored with a code; a good message in the same batch is answered.
    const failing: Array<[string, Buffer, Record<string, string>, string]> = [
      ['silence', wavFile(16000, Buffer.alloc(16000 * 2 * 2)), {}, 'ERR_AUDIO_SILENT'],
      [
        'ten minutes of Ogg/Opus',
        ffmpeg(null, [
          '-f',
          'lavfi',
          '-i',
          'sine=frequency=440:duration=600',
          '-c:a',
          'libopus',
          '-b:a',
          '8k',
          '-f',
          'ogg',
        ]),
        {},
        'ERR_AUDIO_TOO_LONG',
      ],
      ['a 4 kHz FLAC', ffmpeg(good, ['-ar', '4000', '-f', 'flac']), {}, 'ERR_AUDIO_SAMPLE_RATE'],
      [
        'an Ogg whose inside is not audio',
        Buffer.concat([Buffer.from('OggS'), Buffer.alloc(4000, 0x55)]),
        {},
        'ERR_AUDIO_FORMAT',
      ],
      ['a language no recogniser knows', good, { language: 'tlh' }, 'ERR_AUDIO_LANGUAGE'],
    ];
    for (const [what, bytes, fields] of failing)
      expect((await upload(`fail-${what.replaceAll(' ', '-').replaceAll('/', '')}`, bytes, fields)).status, what).toBe(
        202,
      );
    expect((await upload('fine-beside', good)).status).toBe(202);
    for (const [what, , , code] of failing) {
      const reply = await replyOf(`fail-${what.replaceAll(' ', '-').replaceAll('/', '')}`);
      expect(reply, what).toMatchObject({ status: 'failed', error: { code, message: expect.any(String) } });
    }
    expect(await replyOf('fine-beside')).toMatchObject({ status: 'replied', intent: 'thanks' });
  });

  it('detects the language of a message that names none, among AVA_ASR_DETECT (en, zh)', async () => {
    expect((await upload('v-detect', speak('can I pay by credit card', 'en-us+m3', 160))).status).toBe(202);
    const reply = await replyOf('v-detect');
    expect(reply).toMatchObject({ status: 'replied', transcript: { engine: 'whisper', language: 'en' } });
    expect(reply.transcript.languageProbability).toBeGreaterThan(0.9);
    expect(reply.transcript.text).toMatch(/credit card/i);
  });
});

describe('pocketsphinx, the light recogniser (AVA_ASR=pocketsphinx)', () => {
  it('follows the knowledge base: words only a new entry uses are heard once it is imported', async () => {
    const light = await startApiWorld('voice-light', {
      AVA_ASR: 'pocketsphinx',
      AVA_API_TOKENS: `caller:${TOKEN}:enqueue+read+admin:default`,
      AVA_KB_REFRESH_MS: '300',
    });
    const lightBase = await light.listen();
    const heard = async (id: string, audio: Buffer) => {
      expect((await upload(id, audio, {}, 'voice.bin', lightBase)).status).toBe(202);
      return (await light.api.inject({ url: `/v1/messages/${id}?wait=25000`, headers: auth })).json().transcript;
    };
    try {
      const phrase = 'do you sell bamboo lamps';
      const said = speak(phrase);
      expect(await heard('kb-before', said)).toMatchObject({
        engine: 'pocketsphinx',
        text: expect.not.stringMatching(phrase),
      });
      await new KnowledgeRepository(light.database).importEntries([
        {
          _id: 'en-bamboo',
          title: 'Do you sell bamboo lamps?',
          body: 'Yes, bamboo lamps come in six colours.',
          tags: ['lamps'],
          language: 'en',
          source: 'test.md',
        },
      ]);
      // Every worker rebuilds its domain model after its next knowledge refresh (AVA_KB_REFRESH_MS, 300 ms here).
      let n = 0;
      await expect
        .poll(async () => (await heard(`kb-after-${n++}`, said)).text, { timeout: 15_000, interval: 200 })
        .toBe(phrase);
    } finally {
      await light.close();
    }
  }, 60_000);
});
