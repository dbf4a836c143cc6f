import { env } from '@huggingface/transformers';

/**
 * The one place transformers.js's global `env` is set. AVA loads models from local folders only: a model that is not
 * there is an error at start, never a download at load. Downloads happen only through {@link withHubDownloads}
 * (`npm run models:fetch`, or a worker with `AVA_ALLOW_REMOTE_MODELS`).
 */
export function offlineTransformers(): void {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
}

/**
 * Runs `work` with transformers.js allowed to download from `host` into `cacheDir` (and not to read local models),
 * then sets it offline again, whether `work` succeeded or not.
 */
export async function withHubDownloads<T>(host: string, cacheDir: string, work: () => Promise<T>): Promise<T> {
  Object.assign(env, {
    allowRemoteModels: true,
    allowLocalModels: false,
    remoteHost: host,
    cacheDir,
    useFSCache: true,
  });
  try {
    return await work();
  } finally {
    offlineTransformers();
  }
}
