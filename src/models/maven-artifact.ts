import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ModelForgeError } from '../errors/errors.js';
import { cachedPackage } from './pip-wheel.js';

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
 * A pinned jar from the cache, or fetched once by Maven's own client (`mvn dependency:copy`) into it, kept beside the
 * wheels as `<cache>/<sha256>.jar` (see `cachedPackage`).
 */
export async function fetchArtifact(
  artifact: PinnedArtifact,
  opts: { cacheDir?: string; mvn?: string } = {},
): Promise<{ file: string; fetched: boolean }> {
  return cachedPackage(
    { name: artifact.coordinates, sha256: artifact.sha256, extension: '.jar', cacheDir: opts.cacheDir },
    async (work) => {
      const args = [
        '-q',
        '-B',
        `${DEPENDENCY_PLUGIN}:copy`,
        `-Dartifact=${artifact.coordinates}:jar`,
        `-DoutputDirectory=${work}`,
      ];
      await run(opts.mvn ?? 'mvn', args, { timeout: 900_000, maxBuffer: 16 * 2 ** 20, cwd: work }).catch(
        (cause: Error & { stdout?: string }) => {
          throw new ModelForgeError(
            `Maven could not fetch ${artifact.coordinates}: ${`${cause.stdout ?? ''}${cause.message}`.split('\n').slice(-3).join(' ')}`,
            {
              cause,
              hint: 'install Maven (apt-get install maven), or fetch the jar elsewhere and pass it with --from',
            },
          );
        },
      );
    },
  );
}
