import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KnowledgeFileError } from '../../src/errors/errors.js';
import { parseKnowledgeFile } from '../../src/knowledge/knowledge-file-parser.js';
import { KnowledgeIndex } from '../../src/knowledge/knowledge-index.js';
import { ROOT } from '../helpers/paths.js';

describe('parseKnowledgeFile', () => {
  it('reads Markdown: one entry per heading, with {#id}, Tags: and code blocks kept in the body', () => {
    const md =
      'Preamble, not imported.\n\n## Shipping {#ship}\nTags: delivery, fees\n\nIt costs 15 yuan.\n\n```\n# not a heading\n```\n\nReturns\n-------\nWithin 30 days.\n';
    const entries = parseKnowledgeFile('/kb/faq.md', md);
    expect(entries).toHaveLength(2);
    expect(entries[0]).toEqual({
      _id: 'ship',
      title: 'Shipping',
      body: 'It costs 15 yuan.\n\n```\n# not a heading\n```',
      tags: ['delivery', 'fees'],
      language: 'en',
      source: 'faq.md',
    });
    expect(entries[1]).toMatchObject({ title: 'Returns', body: 'Within 30 days.', tags: [] });
    // No explicit id: derived from the file name and the title, so it is the same on every import, whatever the body.
    expect(entries[1]._id).toMatch(/^faq\.md:[0-9a-f]{16}$/);
    expect(parseKnowledgeFile('/elsewhere/faq.md', md.replace('Within 30 days.', 'Within 14 days.'))[1]._id).toBe(
      entries[1]._id,
    );
  });

  it('reads JSON lines, skipping blank lines and detecting the language', () => {
    const entries = parseKnowledgeFile(
      'faq.jsonl',
      '{"id":"a","title":"运费","body":"每单15元"}\n\n{"title":"Hours","body":"10 to 22","tags":["store"]}\n',
    );
    expect(entries.map((e) => [e._id.startsWith('a') || e._id.startsWith('faq.jsonl:'), e.language, e.tags])).toEqual([
      [true, 'zh', []],
      [true, 'en', ['store']],
    ]);
  });

  it.each([
    ['faq.jsonl', '{"title":"a","body":"b"}\n{"title": "c", body}\n', 2, /not valid JSON/],
    ['faq.jsonl', '{"title":"a"}\n', 1, /body: /],
    ['faq.jsonl', '{"title":"a","body":"b","colour":"red"}\n', 1, /unknown field\(s\): colour/],
    ['faq.jsonl', '["title","body"]\n', 1, /expected object/],
    [
      'faq.jsonl',
      '{"id":"x","title":"a","body":"b"}\n{"id":"x","title":"c","body":"d"}\n',
      2,
      /duplicate id "x" \(first on line 1\)/,
    ],
    ['faq.jsonl', '{"id":"$where","title":"a","body":"b"}\n', 1, /id must be/],
    ['faq.jsonl', '\n\n', 1, /no entries/],
    ['faq.md', 'just text, no heading\n', 1, /needs a heading per entry/],
    ['faq.md', '# A\nbody\n\n# B\n\n# C\ntext\n', 4, /entry "B" has no body/],
    ['faq.md', '# A {#bad id}\nbody\n', 1, /heading id "bad id"/],
    ['faq.txt', 'anything', 0, /unsupported file type/],
    ['faq.jsonl', '{"title":"a","body":"NUL \\u0000 inside"}\n', 1, /body must not contain control characters/],
    ['faq.md', '# A\nbell \u0007 here\n', 1, /contains control characters/],
  ])('refuses %s %j at line %i', (file, content, line, reason) => {
    const err = (() => {
      try {
        parseKnowledgeFile(file, content);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KnowledgeFileError);
    expect((err as KnowledgeFileError).problem).toMatchObject({ file, line });
    expect((err as KnowledgeFileError).problem.reason).toMatch(reason);
    expect((err as KnowledgeFileError).message.startsWith(`${file}:${line}: `)).toBe(true);
  });
});

describe('KnowledgeIndex over the sample shop FAQ', () => {
  it('puts the right entry in the top 3 for at least 90% of the questions, in both languages', () => {
    const entries = ['kb/shop-faq.en.md', 'kb/shop-faq.zh.jsonl'].flatMap((f) =>
      parseKnowledgeFile(f, readFileSync(path.join(ROOT, f), 'utf8')),
    );
    const index = new KnowledgeIndex(entries);
    const questions = readFileSync(path.join(ROOT, 'test/fixtures/kb-questions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { q: string; id: string });
    expect(questions.length).toBeGreaterThanOrEqual(20);
    const ranks = questions.map((q) => index.top(q.q, 3).findIndex((p) => p.id === q.id));
    const at1 = ranks.filter((r) => r === 0).length / questions.length;
    const at3 = ranks.filter((r) => r >= 0).length / questions.length;
    console.log(
      `knowledge retrieval over ${questions.length} questions (${entries.length} entries): recall@1 ${(at1 * 100).toFixed(1)}%, recall@3 ${(at3 * 100).toFixed(1)}%`,
    );
    expect(at3).toBeGreaterThanOrEqual(0.9);
    expect(index.top('运费要多少钱', 3)[0].id).toBe('zh-shipping-cost');
    expect(index.top('I like turtles', 3)).toEqual([]);
  });
});
