import { mkdir, mkdtemp, rename, rm, access } from 'node:fs/promises';
import path from 'node:path';
import { AutoConfig, AutoModelForCausalLM, AutoTokenizer, type ProgressInfo } from '@huggingface/transformers';
import { withHubDownloads } from './transformers-env.js';
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
  try {
    const common = { revision: opts.revision, progress_callback: opts.onProgress };
    await withHubDownloads(opts.hubHost, cacheDir, async () => {
      await AutoConfig.from_pretrained(id, common);
      await AutoTokenizer.from_pretrained(id, common);
      const model = await AutoModelForCausalLM.from_pretrained(id, { ...common, dtype: 'fp32' });
      await model.dispose();
    });
    const downloaded = path.join(cacheDir, ...id.split('/'));
    await checkModelDir(downloaded);
    await rename(downloaded, targetDir);
  } catch (err) {
    if (err instanceof ModelResolveError) throw err;
    throw new ModelResolveError(`downloading ${id} from ${opts.hubHost} failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}
