// Regenerates README.md's configuration tables from src/config/config-schema.ts (`npm run docs:config`).
import { readFileSync, writeFileSync } from 'node:fs';
import { withConfigDocs } from '../src/config/config-docs.js';

const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = withConfigDocs(before);
writeFileSync(file, after);
console.log(
  after === before ? 'README.md: configuration tables already current' : 'README.md: configuration tables regenerated',
);
