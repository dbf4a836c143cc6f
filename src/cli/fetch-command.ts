import path from 'node:path';
import { Command } from 'commander';
import { MultiBar, Presets } from 'cli-progress';
import { fetchModel } from '../models/model-fetcher.js';
import { loadConfig } from '../config/config.js';
import { AvaError } from '../errors/errors.js';

const program = new Command('models:fetch')
  .description(
    'Download a GPT-2 ONNX export from a model hub into the models folder (the only command that goes online).',
  )
  .argument('<id>', 'hub model id, e.g. Xenova/gpt2')
  .option('--host <url>', 'hub base URL (default: AVA_HUB_HOST or https://huggingface.co/)')
  .option('--revision <rev>', 'branch, tag or commit', 'main')
  .option('--out <dir>', 'target directory (default: <AVA_MODELS_DIR>/<id>)')
  .addHelpText('after', '\nExample:\n  npm run models:fetch -- Xenova/gpt2\n  AVA_MODEL=Xenova/gpt2 npm run worker');

program.parse();
const [id] = program.args;
const opts = program.opts<{ host?: string; revision: string; out?: string }>();
try {
  const config = loadConfig();
  const target = path.resolve(opts.out ?? path.join(config.model.dir, id));
  const bars = new MultiBar(
    { format: '{file} [{bar}] {percentage}% | {loaded}/{total} bytes', stream: process.stderr, hideCursor: true },
    Presets.shades_classic,
  );
  const byFile = new Map<string, ReturnType<MultiBar['create']>>();
  await fetchModel(id, target, {
    hubHost: opts.host ?? config.model.hubHost,
    revision: opts.revision,
    onProgress: (info) => {
      if (info.status !== 'progress') return;
      let bar = byFile.get(info.file);
      if (!bar) byFile.set(info.file, (bar = bars.create(info.total, 0, { file: info.file })));
      bar.update(info.loaded, { file: info.file, loaded: info.loaded, total: info.total });
    },
  });
  bars.stop();
  console.log(`fetched ${id} into ${target}`);
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
