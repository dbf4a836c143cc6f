import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOCS_MARKERS, renderConfigDocs } from '../../src/config/config-docs.js';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { SCRIPT_VARIABLES } from '../../src/config/config-schema.js';
import { ROOT } from '../helpers/paths.js';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const filesUnder = (dir: string): string[] =>
  readdirSync(path.join(ROOT, dir)).flatMap((name) => {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) return filesUnder(rel);
    return /\.(ts|mjs|js|sh|md|yaml|yml|html)$/.test(name) ? [rel] : [];
  });

describe('the configuration docs', () => {
  it("are README.md's tables, generated from the schema (run `npm run docs:config` after changing an option)", () => {
    const readme = read('README.md');
    const start = readme.indexOf(CONFIG_DOCS_MARKERS.start);
    const end = readme.indexOf(CONFIG_DOCS_MARKERS.end);
    expect(start).toBeGreaterThan(0);
    expect(readme.slice(start + CONFIG_DOCS_MARKERS.start.length, end).trim()).toBe(renderConfigDocs().trim());
  });

  it('give every AVA_* name the code, scripts, deploy files and docs use one home: the schema or the script list', () => {
    const known = new Set<string>([...CONFIG_VARIABLES, ...SCRIPT_VARIABLES.map((v) => v.env)]);
    const files = ['src', 'workers', 'scripts', 'bench', 'test', 'deploy', 'docs'].flatMap(filesUnder);
    const strays = files.flatMap((file) =>
      [...read(file).matchAll(/\bAVA_[A-Z0-9_]*[A-Z0-9]\b/g)]
        .map((m) => m[0])
        .filter((name) => !known.has(name))
        .map((name) => `${file}: ${name}`),
    );
    expect([...new Set(strays)]).toEqual([]);
  });
});
