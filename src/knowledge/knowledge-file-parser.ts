import { createHash } from 'node:crypto';
import path from 'node:path';
import { marked, type Token } from 'marked';
import { z } from 'zod';
import { CONTROL_CHARACTERS } from '../contract/message-contract.js';
import { KnowledgeFileError } from '../errors/errors.js';
import { languageOf } from '../language/search-terms.js';
import type { KnowledgeEntryInput } from '../storage/knowledge-entry.js';

const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Text that can be stored and put into a prompt: no control characters (tab and line breaks aside), well-formed. */
const clean = (s: string) => !CONTROL_CHARACTERS.test(s) && s.isWellFormed();
const MAX_BODY_CHARS = 20_000;

const jsonEntry = z.strictObject({
  id: z.string().regex(ID, 'id must be 1-128 characters of A-Z a-z 0-9 _ . : -').optional(),
  title: z
    .string()
    .trim()
    .min(1, 'title must not be empty')
    .max(300, 'title must be at most 300 characters')
    .refine(clean, 'title must not contain control characters or lone surrogates'),
  body: z
    .string()
    .trim()
    .min(1, 'body must not be empty')
    .max(MAX_BODY_CHARS, `body must be at most ${MAX_BODY_CHARS} characters`)
    .refine(clean, 'body must not contain control characters or lone surrogates'),
  tags: z.array(z.string().trim().min(1).max(64)).max(32).default([]),
  language: z.enum(['en', 'zh']).optional(),
});

/**
 * Reads the entries of one knowledge file: JSON lines (`.jsonl`, `.ndjson`; one object per line with title, body and
 * optional id, tags and language) or Markdown (`.md`, `.markdown`; one entry per heading, its body the text up to the
 * next heading, an optional `{#id}` at the end of the heading and an optional `Tags:` line under it). The first
 * problem is reported with the file, the line and the reason; nothing is returned from a file that has one.
 */
export function parseKnowledgeFile(file: string, content: string): KnowledgeEntryInput[] {
  const ext = path.extname(file).toLowerCase();
  const entries =
    ext === '.jsonl' || ext === '.ndjson'
      ? parseJsonLines(file, content)
      : ext === '.md' || ext === '.markdown'
        ? parseMarkdown(file, content)
        : unsupported(file);
  const seen = new Map<string, number>();
  for (const [i, e] of entries.entries()) {
    if (seen.has(e.entry._id))
      fail(file, e.line, `duplicate id "${e.entry._id}" (first on line ${seen.get(e.entry._id)})`);
    seen.set(e.entry._id, e.line);
    if (i >= 10_000) fail(file, e.line, 'more than 10,000 entries in one file');
  }
  if (entries.length === 0)
    fail(
      file,
      1,
      ext.startsWith('.md') ? 'no entries: a Markdown knowledge file needs a heading per entry' : 'no entries',
    );
  return entries.map((e) => e.entry);
}

interface Located {
  entry: KnowledgeEntryInput;
  line: number;
}

function parseJsonLines(file: string, content: string): Located[] {
  const out: Located[] = [];
  content.split(/\r?\n/).forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === '') return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      fail(file, line, `not valid JSON: ${(err as Error).message}`);
    }
    const parsed = jsonEntry.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      fail(
        file,
        line,
        issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : `${where}${issue.message}`,
      );
    }
    const e = parsed.data!;
    out.push({ line, entry: entryOf(file, e.id, e.title, e.body, e.tags, e.language) });
  });
  return out;
}

function parseMarkdown(file: string, content: string): Located[] {
  let tokens: Token[];
  try {
    tokens = marked.lexer(content);
  } catch (err) {
    return fail(file, 1, `not valid Markdown: ${(err as Error).message}`);
  }
  const out: Located[] = [];
  let line = 1;
  let current: { title: string; id?: string; line: number; parts: string[] } | undefined;
  const close = () => {
    if (!current) return;
    const lines = current.parts.join('').trim().split('\n');
    const tagLine = /^tags:\s*(.+)$/i.exec(lines[0] ?? '');
    const tags = tagLine
      ? tagLine[1]
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean)
      : [];
    const body = (tagLine ? lines.slice(1) : lines).join('\n').trim();
    if (body === '') fail(file, current.line, `entry "${current.title}" has no body`);
    if (body.length > MAX_BODY_CHARS)
      fail(file, current.line, `entry "${current.title}" is longer than ${MAX_BODY_CHARS} characters`);
    if (!clean(body) || !clean(current.title))
      fail(file, current.line, `entry "${current.title}" contains control characters or lone surrogates`);
    out.push({ line: current.line, entry: entryOf(file, current.id, current.title, body, tags) });
  };
  for (const token of tokens) {
    if (token.type === 'heading') {
      close();
      const m = /^(.*?)\s*\{#([^}]*)\}\s*$/.exec(token.text);
      const title = (m ? m[1] : token.text).trim();
      if (m && !ID.test(m[2])) fail(file, line, `heading id "${m[2]}" must be 1-128 characters of A-Z a-z 0-9 _ . : -`);
      if (title === '') fail(file, line, 'heading has no title');
      current = { title, id: m?.[2], line, parts: [] };
    } else if (current) {
      current.parts.push(token.raw);
    }
    line += token.raw.split('\n').length - 1;
  }
  close();
  return out;
}

function entryOf(
  file: string,
  id: string | undefined,
  title: string,
  body: string,
  tags: string[],
  language?: 'en' | 'zh',
): KnowledgeEntryInput {
  const source = path.basename(file);
  // Derived from where the entry comes from and what it is called, not from its text, so editing the body of an
  // entry updates it instead of adding a second one.
  const stableId =
    id ??
    `${source.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80)}:${createHash('sha256').update(title).digest('hex').slice(0, 16)}`;
  return { _id: stableId, title, body, tags, language: language ?? languageOf(`${title} ${body}`), source };
}

function unsupported(file: string): never {
  return fail(file, 0, 'unsupported file type: use .jsonl / .ndjson (JSON lines) or .md / .markdown');
}

function fail(file: string, line: number, reason: string): never {
  throw new KnowledgeFileError({ file, line, reason });
}
