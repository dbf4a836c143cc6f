import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ModelForgeError } from '../errors/errors.js';
import { exists } from './folder-files.js';
import { defaultWheelCache, sha256Of } from './pip-wheel.js';

const run = promisify(execFile);

/** A Maven artifact pinned by its coordinates and the sha256 of its jar. */
export interface PinnedArtifact {
  /** `group:artifact:version`, as Maven takes it. */
  coordinates: string;
  sha256: string;
}

/** The dependency plugin whose `copy` goal fetches one artifact without a project. */
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

/**
 * A pinned jar from the cache, or fetched once by Maven's own client (`mvn dependency:copy`) into it. Kept beside the
 * wheels as `<cache>/<sha256>.jar`, so it is fetched once per machine, and a jar whose digest is not the pinned one is
 * refused, never used.
 */
export async function fetchArtifact(
  artifact: PinnedArtifact,
  opts: { cacheDir?: string; mvn?: string } = {},
): Promise<{ file: string; fetched: boolean }> {
  const cacheDir = opts.cacheDir ?? defaultWheelCache();
  const target = path.join(cacheDir, `${artifact.sha256}.jar`);
  if (await exists(target)) return { file: target, fetched: false };
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, '.download-'));
  try {
    await run(
      opts.mvn ?? 'mvn',
      ['-q', '-B', `${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${artifact.coordinates}:jar`, `-DoutputDirectory=${work}`],
      { timeout: 900_000, maxBuffer: 16 * 2 ** 20, cwd: work },
    ).catch((cause: Error & { stdout?: string }) => {
      throw new ModelForgeError(
        `Maven could not fetch ${artifact.coordinates}: ${`${cause.stdout ?? ''}${cause.message}`.split('\n').slice(-3).join(' ')}`,
        { cause, hint: 'install Maven (apt-get install maven), or fetch the jar elsewhere and pass it with --from' },
      );
    });
    const name = (await readdir(work)).find((f) => f.endsWith('.jar'));
    if (!name) throw new ModelForgeError(`Maven fetched no jar for ${artifact.coordinates}`);
    const digest = await sha256Of(path.join(work, name));
    if (digest !== artifact.sha256)
      throw new ModelForgeError(
        `${artifact.coordinates} fetched with sha256 ${digest}, expected ${artifact.sha256}; not used`,
      );
    await rename(path.join(work, name), target);
    return { file: target, fetched: true };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
