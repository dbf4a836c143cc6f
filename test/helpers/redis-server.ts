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

  private constructor(readonly port: number, private readonly dir: string) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await stablePort(), await mkdtemp(path.join(os.tmpdir(), 'ava-redis-')));
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server on its port and data folder; waits until it accepts connections. */
  async up(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--dir', this.dir, '--save', ''], { stdio: 'ignore' });
    if (!(await waitForPort(this.port, 5_000))) throw new Error(`redis-server did not start on ${this.port}`);
  }

  /** Stops the server the way an operator's restart does (SIGTERM: it flushes the append-only file and exits). */
  async down(): Promise<void> {
    if (this.child) await terminate(this.child);
  }

  async close(): Promise<void> {
    await this.down();
    await rm(this.dir, { recursive: true, force: true });
  }
}
