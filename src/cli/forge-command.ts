import { Command, InvalidArgumentError } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { forgeModel, DEFAULT_FORGE_SEED } from '../models/model-forge.js';
import { PRESETS } from '../models/presets.js';
import { AvaError } from '../errors/errors.js';

const program = new Command('models:forge')
  .description('Forge a GPT-2-architecture model directory (config, tokenizer, onnx/model.onnx) with seeded weights.')
  .requiredOption('--preset <name>', `model shape: ${Object.keys(PRESETS).join(', ')}`)
  .requiredOption('--out <dir>', 'output model directory (written atomically)')
  .option('--seed <n>', 'weight seed; the same seed gives byte-identical files', parseSeed, DEFAULT_FORGE_SEED)
  .option('--force', 'replace the output directory if it exists', false)
  .addHelpText(
    'after',
    '\nExample:\n  npm run models:forge -- --preset tiny --out models/tiny\n  npm run models:forge -- --preset gpt2 --out .cache/models/gpt2 --seed 7',
  );

function parseSeed(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff)
    throw new InvalidArgumentError('must be an integer in [0, 2147483647]');
  return n;
}

program.parse();
const opts = program.opts<{ preset: string; out: string; seed: number; force: boolean }>();
const bar = new SingleBar(
  { format: 'forging {preset} [{bar}] {percentage}% | {value}/{total} parameters', stream: process.stderr },
  Presets.shades_classic,
);
let started = false;
try {
  const result = await forgeModel({
    preset: opts.preset,
    outDir: opts.out,
    seed: opts.seed,
    force: opts.force,
    onProgress: (done, total) => {
      if (!started) {
        bar.start(total, 0, { preset: opts.preset });
        started = true;
      }
      bar.update(done);
    },
  });
  if (started) bar.stop();
  console.log(
    `forged ${opts.preset} (${result.parameters.toLocaleString('en')} parameters, ${(result.bytes / 2 ** 20).toFixed(1)} MiB) into ${result.outDir}`,
  );
} catch (err) {
  if (started) bar.stop();
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
