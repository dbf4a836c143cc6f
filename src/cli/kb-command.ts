import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { KnowledgeFileError } from '../errors/errors.js';
import type { KnowledgeEntryInput } from '../storage/knowledge-entry.js';
import { parseKnowledgeFile } from '../knowledge/knowledge-file-parser.js';
import { KnowledgeIndex } from '../knowledge/knowledge-index.js';
import { KnowledgeRepository } from '../storage/knowledge-repository.js';
import { CliContext } from './cli-context.js';

/** Adds `ava kb import|search|list`: the knowledge base from the command line. */
export function registerKnowledgeCommands(program: Command): void {
  const kb = program.command('kb').description('knowledge base: import JSON lines or Markdown files, search, list');

  kb.command('import')
    .description(
      'import knowledge files (.jsonl / .ndjson: one entry per line; .md: one entry per heading); idempotent by stable id',
    )
    .argument('<files...>', 'files to import')
    .option('--prune', 'also remove entries previously imported from these files that are no longer in them', false)
    .addHelpText(
      'after',
      `
Every file is checked before anything is written: one bad line refuses the whole import with file:line: reason.
Workers pick the change up within AVA_KB_REFRESH_MS.

Examples:
  npm run kb:import -- kb/shop-faq.en.md kb/shop-faq.zh.jsonl
  ava kb import --prune kb/*.md`,
    )
    .action(async (files: string[], opts: { prune: boolean }) => {
      const entries: KnowledgeEntryInput[] = [];
      for (const file of files) {
        const content = await readFile(file, 'utf8').catch((cause: Error) => {
          throw new KnowledgeFileError({ file, line: 0, reason: `cannot read it: ${cause.message}` });
        });
        const parsed = parseKnowledgeFile(file, content);
        console.log(`${file}: ${parsed.length} entries`);
        entries.push(...parsed);
      }
      const sources = new Map<string, string>();
      for (const e of entries) {
        const first = sources.get(e._id);
        if (first)
          throw new KnowledgeFileError({ file: e.source, line: 0, reason: `id "${e._id}" is also in ${first}` });
        sources.set(e._id, e.source);
      }
      const ctx = new CliContext();
      try {
        const repo = new KnowledgeRepository(await ctx.db());
        const summary = await repo.importEntries(entries, { prune: opts.prune });
        console.log(
          `imported ${entries.length} entries: ${summary.inserted} new, ${summary.updated} updated, ${summary.unchanged} unchanged, ${summary.removed} removed`,
        );
      } finally {
        await ctx.close();
      }
    });

  kb.command('search')
    .description('show the passages a message would retrieve (BM25, Chinese-aware), best first')
    .argument('<text...>', 'message text')
    .option('-k, --top <k>', 'passages to show', (v) => Number(v), 3)
    .action(async (words: string[], opts: { top: number }) => {
      const ctx = new CliContext();
      try {
        const index = new KnowledgeIndex(await new KnowledgeRepository(await ctx.db()).all());
        for (const p of index.top(words.join(' '), opts.top)) console.log(JSON.stringify(p));
      } finally {
        await ctx.close();
      }
    });

  kb.command('list')
    .description('list the entries: id, language, title')
    .action(async () => {
      const ctx = new CliContext();
      try {
        const entries = await new KnowledgeRepository(await ctx.db()).all();
        for (const e of entries.sort((a, b) => a._id.localeCompare(b._id)))
          console.log(`${e._id}\t${e.language}\t${e.title}`);
      } finally {
        await ctx.close();
      }
    });
}
