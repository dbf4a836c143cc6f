import { Command } from 'commander';
import { AvaError } from '../errors/errors.js';
import { forgeWhisper, WHISPER_PRESETS } from '../models/whisper-forge.js';

const program = new Command('models:whisper')
  .description(
    "Forge an English-only Whisper folder in transformers.js's layout with seeded weights (it runs, and hears noise). A real export in the same layout replaces it.",
  )
  .option('--preset <name>', `model shape: ${Object.keys(WHISPER_PRESETS).join(', ')}`, 'tiny.en')
  .requiredOption('--out <dir>', 'output model directory (written atomically)')
  .option('--seed <n>', 'weight seed', (v) => Number(v), 42)
  .option('--force', 'replace the output directory if it exists', false)
  .addHelpText(
    'after',
    '\nExample:\n  npm run models:whisper -- --out models/whisper   # then AVA_ASR=whisper, or auto',
  );

program.parse();
const opts = program.opts<{ preset: string; out: string; seed: number; force: boolean }>();
try {
  const { outDir } = await forgeWhisper({ preset: opts.preset, outDir: opts.out, seed: opts.seed, force: opts.force });
  console.log(`forged Whisper ${opts.preset} into ${outDir}`);
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
