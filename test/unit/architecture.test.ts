import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

const SRC = path.join(ROOT, 'src');

/** Every module under src/ with the specifiers it imports (static and dynamic). */
function modules(dir = SRC): Array<{ file: string; imports: string[] }> {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return modules(p);
    if (!name.endsWith('.ts')) return [];
    const text = readFileSync(p, 'utf8');
    const imports = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/g)].map(
      (m) => m[1] ?? m[2],
    );
    return [{ file: path.relative(SRC, p), imports }];
  });
}

const folderOf = (file: string) => file.split(path.sep)[0];
/** Which modules import a package: what the seams promise. */
const importersOf = (pkg: string) =>
  modules()
    .filter((m) => m.imports.some((i) => i === pkg || i.startsWith(`${pkg}/`)))
    .map((m) => m.file);

/** The layer table of docs/architecture.md: each folder and the folders it may import. */
function layerTable(): Map<string, Set<string>> {
  const doc = readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const table = doc.slice(doc.indexOf('<!-- layers:'), doc.indexOf('<!-- /layers -->'));
  const rows = [...table.matchAll(/^\| `([a-z-]+)\/` \| ([^|]+) \|$/gm)];
  return new Map(rows.map((m) => [m[1], new Set(m[2].trim() === '—' ? [] : m[2].split(',').map((x) => x.trim()))]));
}

/** Every import from one folder of src/ into another, as `from → to (file)`. */
function folderImports(): Array<{ from: string; to: string; file: string }> {
  return modules().flatMap((m) =>
    m.imports
      .filter((s) => s.startsWith('.'))
      .map((i) => ({
        from: folderOf(m.file),
        to: folderOf(path.relative(SRC, path.resolve(SRC, path.dirname(m.file), i))),
        file: m.file,
      }))
      .filter((e) => e.to !== e.from),
  );
}

describe('the layout', () => {
  it('imports only what the layer table of docs/architecture.md allows, and the table names every folder', () => {
    const table = layerTable();
    const folders = readdirSync(SRC).filter((name) => statSync(path.join(SRC, name)).isDirectory());
    expect([...table.keys()].sort()).toEqual(folders.sort());
    const forbidden = folderImports()
      .filter((e) => !table.get(e.from)?.has(e.to))
      .map((e) => `${e.file} imports ${e.to}/`);
    expect(forbidden).toEqual([]);
  });

  it('has a layer table in which each folder imports only folders above it (so no cycle can form)', () => {
    const order = [...layerTable()];
    const upward = order.flatMap(([folder, allowed], i) =>
      [...allowed].filter((to) => !order.slice(0, i).some(([above]) => above === to)).map((to) => `${folder} → ${to}`),
    );
    expect(upward).toEqual([]);
  });

  it('keeps the three deliberate directions: queue and storage apart, conversation off the queue, models below inference', () => {
    const edges = new Set(folderImports().map((e) => `${e.from} → ${e.to}`));
    for (const e of ['queue → storage', 'storage → queue', 'conversation → queue', 'models → inference'])
      expect(edges.has(e), e).toBe(false);
  });

  it('has folders that depend one way (no cycle between folders)', () => {
    const edges = new Map<string, Set<string>>();
    for (const m of modules()) {
      const from = folderOf(m.file);
      for (const i of m.imports.filter((s) => s.startsWith('.'))) {
        const to = folderOf(path.relative(SRC, path.resolve(SRC, path.dirname(m.file), i)));
        if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
      }
    }
    const cycles: string[] = [];
    const visit = (node: string, trail: string[]) => {
      for (const next of edges.get(node) ?? []) {
        if (trail.includes(next)) cycles.push([...trail.slice(trail.indexOf(next)), next].join(' → '));
        else visit(next, [...trail, next]);
      }
    };
    for (const node of edges.keys()) visit(node, [node]);
    expect(cycles).toEqual([]);
  });

  it('keeps each outside system behind its seam', () => {
    expect(importersOf('onnxruntime-node')).toEqual(['inference/onnx-session.ts']);
    expect(importersOf('bullmq').every((f) => folderOf(f) === 'queue')).toBe(true);
    expect(importersOf('mongodb').every((f) => folderOf(f) === 'storage')).toBe(true);
    // The C library behind the recogniser: one file binds it.
    expect(importersOf('koffi')).toEqual(['voice/pocketsphinx-recognizer.ts']);
    // transformers.js's global settings: one file sets them.
    const setsEnv = modules()
      .filter((m) =>
        /import \{[^}]*\benv\b[^}]*\} from '@huggingface\/transformers'/.test(
          readFileSync(path.join(SRC, m.file), 'utf8'),
        ),
      )
      .map((m) => m.file);
    expect(setsEnv).toEqual(['models/transformers-env.ts']);
  });
});
