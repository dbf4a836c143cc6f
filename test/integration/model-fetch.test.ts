import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fetchModel } from '../../src/models/model-fetcher.js';
import { resolveModel } from '../../src/models/model-resolver.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';

let server: http.Server;
let host: string;
let tmp: string;
const requested: string[] = [];

/** A loopback stand-in for the hub: serves the forged tiny model at `/<org>/<name>/resolve/<revision>/<file>`. */
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ava-fetch-'));
  server = http.createServer((req, res) => void serveFile(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

async function serveFile(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  requested.push(req.url ?? '');
  const m = /^\/ava-test\/tiny-gpt2\/resolve\/main\/(.+)$/.exec(req.url ?? '');
  const file = m && path.join(TINY_MODEL_DIR, decodeURIComponent(m[1]));
  if (!file || !file.startsWith(TINY_MODEL_DIR)) return void res.writeHead(404).end();
  try {
    const s = await stat(file);
    res.writeHead(200, { 'content-length': s.size });
    createReadStream(file).pipe(res);
  } catch {
    res.writeHead(404).end();
  }
}
afterAll(async () => {
  server.close();
  await rm(tmp, { recursive: true, force: true });
});

it('downloads a model through the hub URL layout into the models folder, and the resolver then finds it', async () => {
  const target = path.join(tmp, 'ava-test', 'tiny-gpt2');
  await expect(resolveModel('ava-test/tiny-gpt2', { modelsDir: tmp })).rejects.toThrow(/not found/);
  const resolved = await resolveModel('ava-test/tiny-gpt2', {
    modelsDir: tmp,
    allowRemote: true,
    fetch: (id, dir) => fetchModel(id, dir, { hubHost: host }),
  });
  expect(resolved.dir).toBe(target);
  expect(requested).toContain('/ava-test/tiny-gpt2/resolve/main/onnx/model.onnx');
  const original = await readFile(path.join(TINY_MODEL_DIR, 'onnx/model.onnx'));
  expect(Buffer.compare(await readFile(path.join(target, 'onnx/model.onnx')), original)).toBe(0);
});

it('fails cleanly and leaves nothing behind when the hub lacks the model', async () => {
  await expect(fetchModel('ava-test/missing', path.join(tmp, 'missing'), { hubHost: host })).rejects.toThrow(
    /downloading ava-test\/missing/,
  );
  await expect(stat(path.join(tmp, 'missing'))).rejects.toThrow();
});
