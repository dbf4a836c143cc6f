import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelLoadError, ModelResolveError } from '../errors/errors.js';

/** Files every model directory must hold, relative to it. */
export const REQUIRED_MODEL_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'onnx/model.onnx',
] as const;

/** How a model id is resolved. */
export interface ResolveOptions {
  /** Folder of local models (`models/` by default). */
  modelsDir: string;
  /** Allow a hub download when the model is not local. Off by default: AVA runs offline. */
  allowRemote?: boolean;
  /** Downloads `id` into `dir`; used only when `allowRemote`. */
  fetch?: (id: string, dir: string) => Promise<void>;
}

/** A resolved model: its id as given and its directory. */
export interface ResolvedModel {
  id: string;
  dir: string;
}

/**
 * The one place that turns a model id into a directory, in this order: (a) the id is itself a directory path,
 * (b) `<modelsDir>/<id>`, (c) a hub download into `<modelsDir>/<id>`, only when allowed. The directory is then
 * checked for every required file, so a broken model fails at start-up with the missing file named.
 */
export async function resolveModel(id: string, opts: ResolveOptions): Promise<ResolvedModel> {
  if (!id || id.includes('\0')) throw new ModelResolveError('model id is empty or invalid');
  const candidates = [path.resolve(id), path.resolve(opts.modelsDir, id)];
  for (const dir of candidates) {
    if (await isDirectory(dir)) {
      await checkModelDir(dir);
      return { id, dir };
    }
  }
  const target = path.resolve(opts.modelsDir, id);
  if (opts.allowRemote && opts.fetch) {
    await opts.fetch(id, target);
    await checkModelDir(target);
    return { id, dir: target };
  }
  throw new ModelResolveError(`model "${id}" not found: neither ${candidates[0]} nor ${candidates[1]} is a directory`, {
    hint: `make the assistant with \`npm run models:assistant -- --out ${path.relative(process.cwd(), target) || target}\` (or convert a Llama-family GGUF with --from), forge a test model with \`npm run models:forge -- --preset tiny --out ${path.relative(process.cwd(), target) || target}\`, or fetch real weights with \`npm run models:fetch -- ${id}\``,
  });
}

/** Throws a {@link ModelLoadError} naming the first required file the directory lacks. */
export async function checkModelDir(dir: string): Promise<void> {
  for (const file of REQUIRED_MODEL_FILES) {
    try {
      await access(path.join(dir, file));
    } catch {
      throw new ModelLoadError(`model directory ${dir} is missing ${file}`, {
        hint: 'make the model again (npm run models:assistant, models:forge) or re-fetch it (npm run models:fetch)',
      });
    }
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}
