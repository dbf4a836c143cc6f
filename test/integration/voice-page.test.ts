/// <reference lib="dom" />
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { startApiWorld } from '../helpers/api-world.js';
import { replyText } from '../helpers/reply-text.js';

const TOKEN = 'voice-page-token-0123456789';
const CHROMIUM = process.env.AVA_CHROMIUM ?? '/usr/bin/chromium';
let world: Awaited<ReturnType<typeof startApiWorld>>;
let browser: Browser;
let dir: string;

beforeAll(async () => {
  world = await startApiWorld('voicepage', {
    AVA_ASR: 'pocketsphinx',
    AVA_INTENTS_FILE: 'config/intents.yaml',
    AVA_API_TOKENS: `page:${TOKEN}:enqueue+read:default`,
  });
  dir = await mkdtemp(path.join(tmpdir(), 'ava-voice-page-'));
  // What the fake microphone plays, once: a question spoken by espeak-ng, then two seconds of silence.
  const wav = path.join(dir, 'question.wav');
  const spoken = execFileSync('espeak-ng', ['-v', 'en-us+f5', '-s', '150', '--stdout', 'where is my order']);
  await writeFile(
    wav,
    execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        'pipe:0',
        '-af',
        'apad=pad_dur=2',
        '-ar',
        '48000',
        '-ac',
        '1',
        '-c:a',
        'pcm_s16le',
        '-f',
        'wav',
        'pipe:1',
      ],
      { input: spoken },
    ),
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}%noloop`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await world.close();
  await rm(dir, { recursive: true, force: true });
});

it('takes a question from the microphone in headless Chromium, shows what was heard and the reply, and plays it spoken', async () => {
  const base = await world.listen();
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/voice#token=${TOKEN}`);
  await page.click('#talk');
  await expect.poll(() => page.textContent('#talk')).toContain('Stop');
  // The fake device plays the question once; recording a little past its end keeps all of it.
  await page.waitForTimeout(2_500);
  await page.click('#talk');
  await page
    .waitForFunction(() => Boolean(document.querySelector<HTMLAudioElement>('#player')?.dataset.played), undefined, {
      timeout: 45_000,
    })
    .catch(async (err: unknown) => {
      throw new Error(`no reply played; state: ${await page.textContent('#state')}; ${String(err)}`);
    });
  const messageId = await page.getAttribute('#player', 'data-message-id');
  expect(await page.textContent('#heard')).toBe('where is my order');
  const stored = await world.database.replies.findOne({ _id: messageId! });
  expect(stored).toMatchObject({
    status: 'replied',
    intent: 'order_status',
    transcript: { text: 'where is my order', engine: 'pocketsphinx' },
  });
  expect(await page.textContent('#reply')).toBe(replyText(stored));
  // Played from the speech cache the worker filled (the page asked for a spoken reply) and transcoded to Ogg/Opus.
  expect(await world.database.audio.countDocuments({ messageId: messageId! })).toBeGreaterThanOrEqual(1);
  expect(await page.evaluate(() => document.querySelector<HTMLAudioElement>('#player')!.duration)).toBeGreaterThan(0.5);
  expect(errors).toEqual([]);
  const out = path.join(ROOT, 'test-output');
  await mkdir(out, { recursive: true });
  await page.screenshot({ path: path.join(out, 'voice-page.png'), fullPage: true });
}, 90_000);
