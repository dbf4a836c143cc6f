/**
 * `npm run bench:answers`: does the assistant state the knowledge base's facts? Questions whose answers are in the
 * English knowledge base, asked in words no intent owns (test/fixtures/answers-dev.jsonl chooses, answers-heldout.jsonl
 * only reports), go straight to the model, without intents: with the passages the worker would retrieve (BM25 fused
 * with the sentence encoder, AVA_KB_TOP_K of them), with the right entry alone, and with none. A reply counts when it
 * holds one of the accepted strings of every fact the question lists (a price, an hour, a name). Greedy, the persona
 * of config/intents.yaml as the system prompt (BENCH_PERSONA tries another on the dev set), AVA_MAX_NEW_TOKENS new
 * tokens. Open questions no shop knowledge answers (test/fixtures/open-questions-dev.json, 48, which chose; and
 * open-questions-heldout.json, 24, written after every choice was made, which only reports) are scored as readable (no phrase of four words three times or more, at least five words) and as
 * refusals ("I'm sorry … I can't / I'm not able").
 * Writes bench/results/answers-<timestamp>.json.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import type { Message } from '../src/contract/message-contract.js';
import { PromptEncoder } from '../src/conversation/prompt-encoder.js';
import { loadEncoders } from '../src/embedding/load-encoder.js';
import { SemanticIndex } from '../src/embedding/semantic-index.js';
import { EngineGenerator } from '../src/generation/engine-generator.js';
import { loadIntentCatalog } from '../src/intent/intent-file.js';
import { localize } from '../src/intent/intent-types.js';
import { renderTemplate } from '../src/intent/template.js';
import { parseKnowledgeFile } from '../src/knowledge/knowledge-file-parser.js';
import { KnowledgeIndex } from '../src/knowledge/knowledge-index.js';
import { machine, writeResult } from './lib/bench-utils.js';

interface Question {
  q: string;
  id: string;
  facts: string[][];
}
type Mode = 'retrieved' | 'right entry' | 'none' | 'open';

const config = loadConfig(process.env);
const dir = path.resolve(process.env.BENCH_MODEL || path.join(config.model.dir, config.model.id));
const allSets = {
  dev: await questions('test/fixtures/answers-dev.jsonl'),
  heldout: await questions('test/fixtures/answers-heldout.jsonl'),
};
// BENCH_SET=dev while choosing; the held-out set only reports.
const sets = process.env.BENCH_SET === 'dev' ? { dev: allSets.dev } : allSets;
/** A repetition penalty to try on the dev set (default: the model's own generation settings). */
const penalty = process.env.BENCH_REPETITION_PENALTY ? Number(process.env.BENCH_REPETITION_PENALTY) : undefined;
const openOf = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as string[];
const openSets = {
  dev: await openOf('test/fixtures/open-questions-dev.json'),
  heldout: await openOf('test/fixtures/open-questions-heldout.json'),
};
const entries = parseKnowledgeFile('kb/shop-faq.en.md', await readFile('kb/shop-faq.en.md', 'utf8')).map((e) => ({
  ...e,
  tags: e.tags ?? [],
}));
const encoder = (
  await loadEncoders({ ...config, semantic: { ...config.semantic, zhEncoder: 'off' } }, pino({ level: 'silent' }))
).en;
const vectors = encoder ? await encoder.embedder.embed(entries.map((e) => `${e.title}\n${e.body}`)) : [];
const index = new KnowledgeIndex(
  entries,
  encoder && {
    en: {
      index: new SemanticIndex(entries.map((e, i) => ({ item: e._id, vector: vectors[i] }))),
      floor: config.semantic.floor,
    },
  },
);
const catalog = await loadIntentCatalog(config.intents.file);
const generator = await EngineGenerator.load({
  id: path.basename(dir),
  dir,
  intraOpThreads: config.runtime.intraOpThreads || 2,
  maxBatchSize: 32,
  maxCachedTokens: 65_536,
  precision: config.engine.precision,
});
const prompts = new PromptEncoder(generator.tokenizer, generator.window);
const maxNew = config.engine.maxNewTokens;

const results: Record<string, Record<Mode, { right: number; of: number; retrievedRight?: number }>> = {};
const replies: Array<{ set: string; mode: Mode; q: string; reply: string; ok: boolean }> = [];
for (const [set, qs] of Object.entries(sets)) {
  const qVectors = encoder ? await encoder.encoder.embed(qs.map((q) => q.q)) : [];
  results[set] = {} as Record<Mode, { right: number; of: number }>;
  for (const mode of ['retrieved', 'right entry', 'none'] as Mode[]) {
    let retrievedRight = 0;
    const requests = qs.map((q, i) => {
      // As a worker retrieves for a message no intent owns: entries close to it in meaning.
      const meaning = qVectors[i] && { language: 'en' as const, vector: qVectors[i] };
      const retrieved = index.top(q.q, config.knowledge.topK, meaning, true);
      if (retrieved[0]?.id === q.id) retrievedRight++;
      const passages =
        mode === 'none' ? [] : mode === 'right entry' ? entries.filter((e) => e._id === q.id) : retrieved;
      const message = { v: 1, messageId: 'bench', conversationId: 'bench', userId: 'bench', text: q.q } as Message;
      const persona = personaFor(message);
      const p = prompts.encode({ passages, turns: [], text: q.q, instructions: persona }, maxNew);
      return { promptIds: p.ids, maxNewTokens: p.maxNewTokens, ...(penalty ? { repetitionPenalty: penalty } : {}) };
    });
    const out = await generator.generate(requests);
    let right = 0;
    out.forEach((o, i) => {
      const reply = o.finishReason === 'error' ? '' : o.text;
      const ok = states(reply, qs[i].facts);
      if (ok) right++;
      replies.push({ set, mode, q: qs[i].q, reply, ok });
    });
    results[set][mode] = { right, of: qs.length, ...(mode === 'retrieved' ? { retrievedRight } : {}) };
  }
}
const openResults: Record<string, { readable: number; refusals: number; of: number }> = {};
for (const [set, qs] of Object.entries(openSets)) {
  if (!(set in sets)) continue;
  const out = await generator.generate(
    qs.map((q) => {
      const message = { v: 1, messageId: 'bench', conversationId: 'bench', userId: 'bench', text: q } as Message;
      const p = prompts.encode({ passages: [], turns: [], text: q, instructions: personaFor(message) }, maxNew);
      return { promptIds: p.ids, maxNewTokens: p.maxNewTokens, ...(penalty ? { repetitionPenalty: penalty } : {}) };
    }),
  );
  const texts = out.map((o) => (o.finishReason === 'error' ? '' : o.text));
  texts.forEach((reply, i) => replies.push({ set, mode: 'open' as Mode, q: qs[i], reply, ok: readable(reply) }));
  openResults[set] = {
    readable: texts.filter(readable).length,
    refusals: texts.filter((t) => /I'?m sorry[^.]*\b(can(no|')t|not (able|equipped))/i.test(t)).length,
    of: qs.length,
  };
}
await generator.close();
await encoder?.close();

console.log(`\n${path.basename(dir)} (${config.engine.precision}): replies that state the knowledge base's fact\n`);
console.table(
  Object.entries(results).flatMap(([set, modes]) =>
    Object.entries(modes).map(([mode, r]) => ({
      set,
      passages: mode,
      'states the fact': `${r.right} / ${r.of} (${((100 * r.right) / r.of).toFixed(1)} %)`,
      'right entry retrieved first': r.retrievedRight === undefined ? '' : `${r.retrievedRight} / ${r.of}`,
    })),
  ),
);
console.table(
  Object.entries(openResults).map(([set, r]) => ({
    set,
    'open questions': r.of,
    readable: `${r.readable} (${((100 * r.readable) / r.of).toFixed(1)} %)`,
    refusals: r.refusals,
  })),
);
const file = await writeResult('answers', {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim(),
  machine: machine(),
  model: path.basename(dir),
  precision: config.engine.precision,
  maxNewTokens: maxNew,
  topK: config.knowledge.topK,
  repetitionPenalty: penalty ?? 'model default',
  persona: process.env.BENCH_PERSONA ?? 'config/intents.yaml',
  results,
  open: openResults,
  replies,
});
console.log(`results: ${file}`);

function personaFor(message: Message): string {
  const template = process.env.BENCH_PERSONA ?? localize(catalog.persona ?? '', 'en');
  return renderTemplate(template, message, {}, catalog.vars);
}

/** At least five words, and no run of four words three times or more (the loops a small greedy model falls into). */
function readable(reply: string): boolean {
  const words = reply.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
  if (words.length < 5) return false;
  const seen = new Map<string, number>();
  for (let i = 0; i + 4 <= words.length; i++) {
    const gram = words.slice(i, i + 4).join(' ');
    seen.set(gram, (seen.get(gram) ?? 0) + 1);
  }
  return Math.max(...seen.values(), 0) < 3;
}

async function questions(file: string): Promise<Question[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Question);
}

/** Whether a reply holds one accepted string of every fact (case-insensitive; numbers and words whole). */
function states(reply: string, facts: string[][]): boolean {
  const whole = (s: string) =>
    new RegExp(`(^|[^\\p{L}\\p{N}])${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\p{L}\\p{N}])`, 'iu');
  return facts.every((accepted) => accepted.some((s) => whole(s).test(reply)));
}
