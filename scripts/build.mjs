#!/usr/bin/env node
// `npm run build`: compiles src/ and workers/ with tsc into dist/ and copies the dashboard's static files beside the
// compiled API and the Lua scripts beside their compiled loader. With --if-stale (the hook before `npm run worker`, `api`, `ava` …) it builds only when a source is
// newer than the last build, and a checkout without sources (the production image) runs dist/ as it is.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist/.build-stamp');
const sources = ['src', 'workers', 'tsconfig.json', 'tsconfig.build.json'].map((p) => path.join(root, p));

function newest(p) {
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(p).map((name) => newest(path.join(p, name))));
}

if (process.argv.includes('--if-stale')) {
  if (!existsSync(path.join(root, 'src'))) process.exit(0);
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= Math.max(...sources.filter(existsSync).map(newest)))
    process.exit(0);
}

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.error(
    'error: dist/ is missing or older than the sources, and TypeScript is not installed to build it: run `npm ci` (with dev dependencies), then `npm run build`',
  );
  process.exit(1);
}
try {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
} catch {
  process.exit(1);
}
cpSync(path.join(root, 'src/api/dashboard'), path.join(root, 'dist/src/api/dashboard'), { recursive: true });
cpSync(path.join(root, 'src/redis/lua'), path.join(root, 'dist/src/redis/lua'), { recursive: true });
writeFileSync(stamp, `${new Date().toISOString()}\n`);
