import { access, rename, rm } from 'node:fs/promises';

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
