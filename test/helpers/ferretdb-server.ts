import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stablePort, terminate, waitForPort } from './test-ports.js';

/** The FerretDB binary that `scripts/services.sh` built. */
export const FERRETDB_BIN = path.join(
  process.env.AVA_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'ava'),
  'bin',
  'ferretdb-v1.24.2',
);

/**
 * A FerretDB server of a test's own, so that a fault test can make the database unreachable (SIGSTOP freezes it:
 * connections stay open and nothing answers, as in a network partition) without disturbing the other tests.
 */
export class OwnFerretDb {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<OwnFerretDb> {
    const [port, debugPort] = [await stablePort(), await stablePort()];
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-ferretdb-'));
    await mkdir(path.join(dir, 'data'));
    const child = spawn(
      FERRETDB_BIN,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${dir}/data/`,
        `--state-dir=${dir}`,
        `--listen-addr=127.0.0.1:${port}`,
        `--debug-addr=127.0.0.1:${debugPort}`,
        '--telemetry=disable',
        '--log-level=error',
      ],
      { stdio: 'ignore' },
    );
    if (await waitForPort(port, 10_000)) return new OwnFerretDb(child, port, dir);
    child.kill('SIGKILL');
    throw new Error(`FerretDB (${FERRETDB_BIN}) did not start on ${port}`);
  }

  get url(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  /** Freezes the server: it keeps its connections but answers nothing. */
  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  /** Lets a frozen server run again. */
  thaw(): void {
    this.child.kill('SIGCONT');
  }

  async close(): Promise<void> {
    this.thaw();
    await terminate(this.child);
    await rm(this.dir, { recursive: true, force: true });
  }
}
