import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntentsFileError } from '../../src/errors/errors.js';
import { loadIntentCatalog } from '../../src/intent/intent-file.js';
import { ROOT } from '../helpers/paths.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ava-intents-'));
  await writeFile(path.join(dir, 'no-handle.ts'), 'export const nothing = 1;\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function loadText(yaml: string) {
  const file = path.join(dir, `intents-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  return loadIntentCatalog(file);
}

const HEAD = 'version: 1\nintents:\n';
const GOOD = '  - name: greeting\n    handler: template\n    reply: Hi!\n    examples:\n      en: [hello]\n';

describe('loadIntentCatalog', () => {
  it('loads the sample file with its custom handler module', async () => {
    const catalog = await loadIntentCatalog(path.join(ROOT, 'config/intents.yaml'));
    expect(catalog.intents.length).toBeGreaterThanOrEqual(8);
    const order = catalog.intents.find((i) => i.handler === 'custom');
    expect(typeof order?.module?.handle).toBe('function');
    expect(catalog.vars.shopName).toBe('Maple & Pine Home Goods');
  });

  it('reads the off-topic examples and the slot patterns', async () => {
    const catalog = await loadText(
      `version: 1\nslots:\n  product: ['(?<product>sofa|lamp)']\noffTopic:\n  en: [what is the capital of Peru]\nintents:\n${GOOD}`,
    );
    expect(catalog.offTopic).toEqual({ en: ['what is the capital of Peru'], zh: [] });
    expect(catalog.slotPatterns.map((p) => p.match('a lamp, please'))).toEqual([{ product: 'lamp' }]);
  });

  it('refuses a slot pattern without the group named after its slot, naming the line', async () => {
    await expect(
      loadText(`version: 1\nslots:\n  product:\n    - '(?<item>sofa)'\nintents:\n${GOOD}`),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/:4: a pattern of slot product needs the group \(\?<product>…\)/),
    });
  });

  it.each([
    [
      'an unknown handler',
      `${HEAD}${GOOD}  - name: order\n    handler: lookup\n    examples: { en: [where is my order] }\n`,
      9,
      /handler must be one of generate, template, knowledge, status/,
    ],
    [
      'a duplicate name',
      `${HEAD}${GOOD}  - name: greeting\n    handler: generate\n    examples: { en: [hey] }\n`,
      8,
      /duplicate intent name "greeting" \(first defined on line 3\)/,
    ],
    ['no examples', `${HEAD}${GOOD}  - name: chat\n    handler: generate\n`, 8, /intent "chat" has no examples/],
    [
      'empty example lists',
      `${HEAD}${GOOD}  - name: chat\n    handler: generate\n    examples: { en: [], zh: [] }\n`,
      10,
      /intent "chat" has no examples/,
    ],
    [
      'a template without reply',
      `${HEAD}  - name: hi\n    handler: template\n    examples: { en: [hi] }\n`,
      4,
      /template intent "hi" needs a reply/,
    ],
    [
      'an unknown field',
      `${HEAD}${GOOD}  - name: chat\n    handler: generate\n    exmples: { en: [hi] }\n`,
      10,
      /unknown field\(s\): exmples/,
    ],
    [
      'a bad pattern',
      `${HEAD}  - name: chat\n    handler: generate\n    examples: { en: [hi] }\n    patterns: ['(unclosed']\n`,
      6,
      /not a valid RE2 regular expression/,
    ],
    [
      'a look-ahead pattern (not linear-time)',
      `${HEAD}  - name: chat\n    handler: generate\n    examples: { en: [hi] }\n    patterns: ['order(?=\\\\d)']\n`,
      6,
      /unsupported Perl syntax/,
    ],
    [
      'an answer on a template intent',
      `${HEAD}  - name: hi\n    handler: template\n    reply: hello\n    answer: entry\n    examples: { en: [hi] }\n`,
      6,
      /answer is only used by knowledge intents/,
    ],
    [
      'a reserved name',
      `${HEAD}  - name: unknown\n    handler: generate\n    examples: { en: [hi] }\n`,
      3,
      /"unknown" is reserved/,
    ],
    [
      'a missing module',
      `${HEAD}  - name: order\n    handler: { module: ./missing.ts }\n    examples: { en: [order] }\n`,
      4,
      /handler module .*missing\.ts cannot be loaded/,
    ],
    [
      'a module without handle',
      `${HEAD}  - name: order\n    handler:\n      module: ./no-handle.ts\n    examples: { en: [order] }\n`,
      5,
      /does not export a handle\(context\) function/,
    ],
    ['invalid YAML', `${HEAD}  - name: [unclosed\n`, 4, /not valid YAML/],
    ['a wrong version', `version: 2\nintents: []\n`, 1, /version must be 1/],
  ])('refuses %s with the file, line and reason', async (_what, yaml, line, reason) => {
    const err = await loadText(yaml).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntentsFileError);
    const e = err as IntentsFileError;
    expect(e.code).toBe('ERR_INTENTS_FILE');
    expect(e.problem.reason).toMatch(reason);
    expect(e.problem.line).toBe(line);
    expect(e.message).toMatch(
      new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/intents-\\w+\\.yaml:${line}: `),
    );
  });

  it('refuses a file that does not exist', async () => {
    await expect(loadIntentCatalog(path.join(dir, 'nope.yaml'))).rejects.toThrow(/nope\.yaml:0: cannot read it/);
  });
});
