import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { processWorld } from '../helpers/process-world.js';
import { ROOT } from '../helpers/paths.js';
import { spawnWorker } from '../helpers/services.js';
import { replyText } from '../helpers/reply-text.js';

const run = promisify(execFile);

/**
 * What the Docker image holds, without Docker: production dependencies only (`npm ci --omit=dev`), the compiled
 * dist/, bin/, config/ and kb/. The install is cached by the lockfile's hash; the code is copied fresh every run.
 */
let app: string;
beforeAll(async () => {
  const lock = await readFile(path.join(ROOT, 'package-lock.json'));
  const hash = createHash('sha256')
    .update(lock)
    .update(await readFile(path.join(ROOT, 'package.json')))
    .digest('hex')
    .slice(0, 16);
  const cache = path.join(
    process.env.AVA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ava'),
    `production-install-${hash}`,
  );
  if (!(await stat(path.join(cache, 'node_modules')).catch(() => undefined))) {
    const tmp = `${cache}.${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) await cp(path.join(ROOT, f), path.join(tmp, f));
    await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: tmp,
      timeout: 600_000,
    });
    await rename(tmp, cache);
  }
  app = await import('node:fs/promises').then((fs) => fs.mkdtemp(path.join(os.tmpdir(), 'ava-production-')));
  await cp(path.join(cache, 'node_modules'), path.join(app, 'node_modules'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  for (const f of ['package.json', 'dist', 'bin', 'config', 'kb'])
    await cp(path.join(ROOT, f), path.join(app, f), { recursive: true });
}, 660_000);
afterAll(async () => {
  if (app) await rm(app, { recursive: true, force: true });
});

describe('the production install (dist/ and production dependencies only)', () => {
  it('has no TypeScript tooling, and the CLI runs', async () => {
    for (const dev of ['typescript', 'tsx', 'vitest'])
      await expect(stat(path.join(app, 'node_modules', dev))).rejects.toThrow(/ENOENT/);
    const { stdout } = await run(process.execPath, ['bin/ava.js', '--help'], { cwd: app });
    expect(stdout).toMatch(/enqueue/);
  });

  it('runs a worker that answers from the model and from the bundled JavaScript handler', async () => {
    const world = await processWorld('prod', { AVA_INTENTS_FILE: path.join(app, 'config/intents.yaml') });
    try {
      const worker = spawnWorker(world.config, {}, app);
      world.workers.push(worker);
      await worker.waitFor((l) => l.msg === 'worker ready');
      await world.producer.enqueueMany([
        { v: 1, messageId: 'prod-order', conversationId: 'c1', userId: 'u', text: 'Where is my order MP-10001?' },
        {
          v: 1,
          messageId: 'prod-chat',
          conversationId: 'c2',
          userId: 'u',
          text: 'Tell me something nice about the weather today',
        },
      ]);
      await followReplies(world.db, ['prod-order', 'prod-chat'], () => undefined, 60_000);
      const order = await world.db.replies.findOne({ _id: 'prod-order' });
      expect(order).toMatchObject({ status: 'replied', intent: 'order_status' });
      expect(replyText(order)).toMatch(/MP-10001 has shipped/);
      expect(await world.db.replies.findOne({ _id: 'prod-chat' })).toMatchObject({
        status: 'replied',
        tokens: { generated: expect.any(Number) },
      });
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    } finally {
      await world.close();
    }
  });
});
