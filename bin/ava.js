#!/usr/bin/env node
// The package's CLI: runs the compiled code in dist/ (`npm run build`), so it needs no TypeScript tooling.
try {
  await import('../dist/src/cli/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    console.error('error: AVA is not built: run `npm run build` first');
    process.exit(1);
  }
  throw err;
}
