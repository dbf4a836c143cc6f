import { randomUUID } from 'node:crypto';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelLoadError } from '../errors/errors.js';

/** Writes `value` as indented JSON with a final newline, as the model folders' config files are. */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Whether a path exists. */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Moves a completely written temporary folder to `outDir` by rename, so readers never see a half-written model; with
 * `force`, an existing `outDir` is swapped out first and removed after.
 */
export async function moveIntoPlace(tmp: string, outDir: string, force: boolean): Promise<void> {
  if (force && (await exists(outDir))) {
    const old = `${tmp}.old`;
    await rename(outDir, old);
    await rename(tmp, outDir);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, outDir);
  }
}

/**
 * A file made once and kept: `target` if it exists, else `make()`'s bytes written to a uniquely named temporary file
 * and renamed into place, so processes making the same file at once never see a partial one. Returns `target`.
 */
export async function cachedFile(target: string, make: () => Promise<Uint8Array>, hint: string): Promise<string> {
  if (await exists(target)) return target;
  const bytes = await make();
  const tmp = `${target}.${randomUUID()}.tmp`;
  try {
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(tmp, bytes);
    await rename(tmp, target);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new ModelLoadError(`writing ${target} failed: ${(cause as Error).message}`, { cause, hint });
  }
  return target;
}
