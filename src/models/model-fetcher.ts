import { mkdir, mkdtemp, rename, rm, access } from 'node:fs/promises';
import path from 'node:path';
import { AutoConfig, AutoModelForCausalLM, AutoTokenizer, env, type ProgressInfo } from '@huggingface/transformers';
import { ModelResolveError } from '../errors/errors.js';
import { checkModelDir } from './model-resolver.js';

/** Options of one download. */
export interface FetchOptions {
  /** Hub base URL, e.g. `https://huggingface.co/` or a mirror. */
  hubHost: string;
  /** Revision (branch, tag or commit); `main` by default. */
  revision?: string;
  /** Called with transformers.js progress events. */
  onProgress?: (info: ProgressInfo) => void;
}

/**
 * Downloads a model with transformers.js's own hub code (so the URL layout, revisions and headers are the hub's) into
 * `targetDir`. Files land in a temporary cache folder first and are renamed into place only when the model loaded,
 * so an interrupted download leaves nothing behind.
 */
export async function fetchModel(id: string, targetDir: string, opts: FetchOptions): Promise<void> {
  try {
    await access(targetDir);
    throw new ModelResolveError(`${targetDir} already exists`, { hint: 'remove it first to download again' });
  } catch (err) {
    if (err instanceof ModelResolveError) throw err;
  }
  const parent = path.dirname(targetDir);
  await mkdir(parent, { recursive: true });
  const cacheDir = await mkdtemp(path.join(parent, '.fetching-'));
  const saved = { allowRemoteModels: env.allowRemoteModels, allowLocalModels: env.allowLocalModels, remoteHost: env.remoteHost, cacheDir: env.cacheDir, useFSCache: env.useFSCache };
  try {
    Object.assign(env, { allowRemoteModels: true, allowLocalModels: false, remoteHost: opts.hubHost, cacheDir, useFSCache: true });
    const common = { revision: opts.revision, progress_callback: opts.onProgress };
    await AutoConfig.from_pretrained(id, common);
    await AutoTokenizer.from_pretrained(id, common);
    const model = await AutoModelForCausalLM.from_pretrained(id, { ...common, dtype: 'fp32' });
    await model.dispose();
    const downloaded = path.join(cacheDir, ...id.split('/'));
    await checkModelDir(downloaded);
    await rename(downloaded, targetDir);
  } catch (err) {
    if (err instanceof ModelResolveError) throw err;
    throw new ModelResolveError(`downloading ${id} from ${opts.hubHost} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    Object.assign(env, saved);
    await rm(cacheDir, { recursive: true, force: true });
  }
}
