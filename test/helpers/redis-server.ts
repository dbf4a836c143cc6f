import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stablePort, terminate, waitForPort } from './test-ports.js';

/**
 * A Redis server of a test's own (Debian's redis-server, append-only file on), so that a fault test can stop and
 * restart it without disturbing the tests that share the project's Redis.
 */
export class OwnRedis {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly appendfsync: 'always' | 'everysec',
  ) {}

  /** Starts a server; `appendfsync` as in scripts/services.sh (`always`) unless given. */
  static async start(appendfsync: 'always' | 'everysec' = 'always'): Promise<OwnRedis> {
    const redis = new OwnRedis(await stablePort(), await mkdtemp(path.join(os.tmpdir(), 'ava-redis-')), appendfsync);
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server on its port and data folder; waits until it accepts connections. */
  async up(): Promise<void> {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--appendonly',
        'yes',
        '--appendfsync',
        this.appendfsync,
        '--maxmemory-policy',
        'noeviction',
        '--dir',
        this.dir,
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    if (!(await waitForPort(this.port, 5_000))) throw new Error(`redis-server did not start on ${this.port}`);
  }

  /** Stops the server the way an operator's restart does (SIGTERM: it flushes the append-only file and exits). */
  async down(): Promise<void> {
    if (this.child) await terminate(this.child);
  }

  /** Freezes the server (SIGSTOP): connections stay open and nothing answers, as in a hung host or a partition. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Thaws a paused server (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server with SIGKILL, as a crash does: nothing is flushed on the way out. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async close(): Promise<void> {
    await this.down();
    await rm(this.dir, { recursive: true, force: true });
  }
}
