import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { IntentsFileError } from '../errors/errors.js';
import { LinearPattern } from './linear-pattern.js';
import type { IntentAnswer, IntentCatalog, IntentDefinition, IntentHandlerModule } from './intent-types.js';

/** Names the recogniser itself gives (`model`: a message sent to the model alone); an intents file may not define them. */
export const RESERVED_INTENTS = ['unknown', 'invalid', 'model'] as const;

const BUILT_IN_HANDLERS = ['generate', 'template', 'knowledge', 'status'] as const;

const text = z.string().trim().min(1, 'must not be empty');
const localized = z.union(
  [text, z.strictObject({ en: text.optional(), zh: text.optional() }).refine((t) => t.en || t.zh, 'needs en or zh')],
  {
    error: 'must be a text, or an object with en and/or zh texts',
  },
);
const pattern = z.string().superRefine((p, ctx) => {
  try {
    LinearPattern.compile(p);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `is not a valid RE2 regular expression (${(err as Error).message}); RE2 matches in linear time and has no look-around or back-references`,
    });
  }
});

const intentSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'name must be lower-case letters, digits and _, starting with a letter'),
  description: z.string().optional(),
  handler: z.union([z.enum(BUILT_IN_HANDLERS), z.strictObject({ module: text })], {
    error: `handler must be one of ${BUILT_IN_HANDLERS.join(', ')} or { module: path/to/handler.ts }`,
  }),
  examples: z
    .strictObject(
      { en: z.array(text).default([]), zh: z.array(text).default([]) },
      { error: 'examples must be an object with en and/or zh lists' },
    )
    .optional(),
  keywords: z.array(text).default([]),
  patterns: z.array(pattern).default([]),
  reply: localized.optional(),
  answer: z.enum(['generate', 'entry'], { error: 'answer must be generate or entry' }).optional(),
});

const fileSchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1' }),
  vars: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/), z.string()).default({}),
  persona: localized.optional(),
  replies: z.strictObject({ invalid: localized, modelLanguage: localized.optional() }).optional(),
  offTopic: z
    .strictObject({ en: z.array(text).default([]), zh: z.array(text).default([]) })
    .default({ en: [], zh: [] }),
  slots: z
    .record(
      z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'a slot name is a letter, then letters, digits or _'),
      z.array(pattern).min(1, 'a slot needs at least one pattern'),
    )
    .default({}),
  intents: z.array(z.unknown()).min(1, 'intents must list at least one intent'),
});

const DEFAULT_MODEL_LANGUAGE_REPLY = {
  en: "Sorry, I can't answer that in this language yet. Please ask in English, or ask for a person.",
  zh: '抱歉，这个问题我暂时只能用英文回答。您可以用英文提问，或输入“转人工”联系人工客服。',
};

const DEFAULT_INVALID_REPLY = {
  en: "Sorry, I couldn't understand that. Could you please rephrase your message?",
  zh: '抱歉，我没有看懂您的消息，请换一种说法再试一次。',
};

/**
 * Loads and checks an intents file (YAML): every intent needs a unique name, a known handler and at least one
 * example; a template needs its reply; a custom handler's module must load and export `handle`. The first problem is
 * reported with the file, the line and the reason, and nothing is returned half-loaded.
 */
export async function loadIntentCatalog(file: string): Promise<IntentCatalog> {
  const abs = path.resolve(file);
  let source: string;
  try {
    source = await readFile(abs, 'utf8');
  } catch (cause) {
    throw new IntentsFileError({ file, line: 0, reason: `cannot read it: ${(cause as Error).message}` });
  }
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true });
  const fail = (at: ReadonlyArray<string | number>, reason: string): never => {
    throw new IntentsFileError({ file, line: lineOf(doc, lines, at), reason });
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new IntentsFileError({
      file,
      line: e.linePos?.[0].line ?? 1,
      reason: `not valid YAML: ${e.message.split('\n')[0]}`,
    });
  }
  const top = fileSchema.safeParse(doc.toJS());
  if (!top.success) return fail(issuePath(top.error.issues[0]), issueText(top.error.issues[0]));

  const slots = slotPatterns(top.data.slots, fail);
  const intents: IntentDefinition[] = [];
  const seen = new Map<string, number>();
  for (const [i, raw] of top.data.intents.entries()) {
    const parsed = intentSchema.safeParse(raw);
    if (!parsed.success)
      return fail(['intents', i, ...issuePath(parsed.error.issues[0])], issueText(parsed.error.issues[0]));
    const def = parsed.data;
    const at = (...rest: Array<string | number>) => ['intents', i, ...rest];
    if ((RESERVED_INTENTS as readonly string[]).includes(def.name))
      fail(at('name'), `"${def.name}" is reserved for the recogniser`);
    if (seen.has(def.name))
      fail(at('name'), `duplicate intent name "${def.name}" (first defined on line ${seen.get(def.name)})`);
    seen.set(def.name, lineOf(doc, lines, at('name')));
    const examples = { en: def.examples?.en ?? [], zh: def.examples?.zh ?? [] };
    if (examples.en.length + examples.zh.length === 0) fail(at('examples'), `intent "${def.name}" has no examples`);
    if (def.handler === 'template' && !def.reply) fail(at('handler'), `template intent "${def.name}" needs a reply`);
    if (def.handler !== 'template' && def.reply)
      fail(
        at('reply'),
        `reply is only used by template intents ("${def.name}" is answered by ${typeof def.handler === 'string' ? def.handler : 'a module'})`,
      );
    if (def.answer && def.handler !== 'knowledge')
      fail(
        at('answer'),
        `answer is only used by knowledge intents ("${def.name}" is answered by ${typeof def.handler === 'string' ? def.handler : 'a module'})`,
      );
    intents.push({
      ...(await intentAnswer(def, abs, (reason) => fail(at('handler', 'module'), reason))),
      name: def.name,
      examples,
      keywords: def.keywords,
      patterns: def.patterns.map((p) => LinearPattern.compile(p)),
    });
  }
  return {
    file,
    intents,
    invalidReply: top.data.replies?.invalid ?? DEFAULT_INVALID_REPLY,
    modelLanguageReply: top.data.replies?.modelLanguage ?? DEFAULT_MODEL_LANGUAGE_REPLY,
    offTopic: top.data.offTopic,
    slotPatterns: slots,
    vars: top.data.vars,
    ...(top.data.persona ? { persona: top.data.persona } : {}),
  };
}

/** The file's slot patterns, compiled; each must capture the slot it is listed under. */
function slotPatterns(
  slots: Record<string, string[]>,
  fail: (at: ReadonlyArray<string | number>, reason: string) => never,
): LinearPattern[] {
  return Object.entries(slots).flatMap(([name, sources]) =>
    sources.map((source, k) => {
      const compiled = LinearPattern.compile(source);
      if (!compiled.names.includes(name))
        fail(['slots', name, k], `a pattern of slot ${name} needs the group (?<${name}>…)`);
      return compiled;
    }),
  );
}

async function importHandler(modulePath: string): Promise<IntentHandlerModule> {
  let mod: Partial<IntentHandlerModule>;
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as Partial<IntentHandlerModule>;
  } catch (cause) {
    // Workers run compiled JavaScript; Node.js 20 cannot load TypeScript by itself.
    const hint = /\.[cm]?ts$/.test(modulePath)
      ? ' (handler modules are JavaScript: compile a TypeScript one with tsc and name the .js file)'
      : '';
    throw new Error(
      `handler module ${modulePath} cannot be loaded: ${(cause as Error).message.split('\n')[0]}${hint}`,
      {
        cause,
      },
    );
  }
  if (typeof mod.handle !== 'function')
    throw new Error(`handler module ${modulePath} does not export a handle(context) function`);
  return mod as IntentHandlerModule;
}

/** Where an issue points; an unknown field points at itself rather than at the object holding it. */
function issuePath(issue: z.core.$ZodIssue): Array<string | number> {
  const at = issue.path as Array<string | number>;
  return issue.code === 'unrecognized_keys' ? [...at, issue.keys[0]] : at;
}

function issueText(issue: z.core.$ZodIssue): string {
  const last = issue.path[issue.path.length - 1];
  // Messages that already name their field ("handler must be …") need no prefix.
  const where =
    issue.path.length > 0 && !(typeof last === 'string' && issue.message.startsWith(last))
      ? `${issue.path.join('.')}: `
      : '';
  if (issue.code === 'unrecognized_keys') return `${where}unknown field(s): ${issue.keys.join(', ')}`;
  return `${where}${issue.message}`;
}

/** The 1-based line of the deepest node on `at` that exists in the document. */
function lineOf(doc: Document, lines: LineCounter, at: ReadonlyArray<string | number>): number {
  for (let n = at.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(at.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return 1;
}

/** How an intent is answered, from its checked entry: a custom handler's module is loaded (relative to the file). */
async function intentAnswer(
  def: z.infer<typeof intentSchema>,
  file: string,
  failModule: (reason: string) => never,
): Promise<IntentAnswer> {
  if (typeof def.handler === 'object') {
    const modulePath = path.resolve(path.dirname(file), def.handler.module);
    const module = await importHandler(modulePath).catch((err: Error) => failModule(err.message));
    return { handler: 'custom', module, modulePath };
  }
  switch (def.handler) {
    case 'template':
      return { handler: 'template', reply: def.reply! };
    case 'knowledge':
      return { handler: 'knowledge', answer: def.answer ?? 'generate' };
    default:
      return { handler: def.handler };
  }
}
