#!/usr/bin/env node
// The package's CLI: runs the TypeScript sources through tsx, the project's one way of running TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
