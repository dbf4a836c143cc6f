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

describe('the layout', () => {
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
  });
});
