import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { stablePort, terminate, waitForPort } from './test-ports.js';

/** The master's name the sentinels monitor. */
export const SENTINEL_MASTER = 'ava-test';

/**
 * Redis with Sentinel on loopback, of a test's own: a master, two replicas (so that one is left to acknowledge
 * writes after a failover) and three sentinels (quorum 2, a master unreachable for 1 s is down), all Debian's
 * redis-server with the append-only file fsynced on every write.
 */
export class RedisSentinelSet {
  private constructor(
    private readonly dir: string,
    readonly masterPort: number,
    readonly replicaPorts: number[],
    readonly sentinelPorts: number[],
    private readonly servers: Map<number, ChildProcess>,
  ) {}

  static async start(): Promise<RedisSentinelSet> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-sentinel-'));
    // Six distinct ports: picked one after the other, each avoiding those before it.
    const picked: number[] = [];
    for (let i = 0; i < 6; i++) picked.push(await stablePort({ avoid: picked }));
    const [masterPort, ...others] = picked;
    const replicaPorts = others.slice(0, 2);
    const sentinelPorts = others.slice(2);
    const servers = new Map<number, ChildProcess>();
    const redis = async (port: number, extra: string[]) => {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--appendfilename',
          `aof-${port}.aof`,
          '--appenddirname',
          `aof-${port}`,
          '--appendfsync',
          'always',
          '--maxmemory-policy',
          'noeviction',
          '--save',
          '',
          ...extra,
        ],
        { stdio: 'ignore' },
      );
      servers.set(port, child);
      if (!(await waitForPort(port, 5_000))) throw new Error(`redis-server did not start on ${port}`);
    };
    await redis(masterPort, []);
    for (const port of replicaPorts) await redis(port, ['--replicaof', '127.0.0.1', String(masterPort)]);
    for (const port of sentinelPorts) {
      const file = path.join(dir, `sentinel-${port}.conf`);
      await writeFile(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
          `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
          '',
        ].join('\n'),
      );
      const child = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' });
      servers.set(port, child);
      if (!(await waitForPort(port, 5_000))) throw new Error(`sentinel did not start on ${port}`);
    }
    const set = new RedisSentinelSet(dir, masterPort, replicaPorts, sentinelPorts, servers);
    for (const port of replicaPorts)
      await set.waitUntil(
        async () => (await set.info(port, 'replication')).includes('master_link_status:up'),
        'the replicas to sync',
      );
    await set.waitUntil(
      async () => (await set.sentinel(sentinelPorts[0], 'sentinel', 'replicas', SENTINEL_MASTER)).length === 2,
      'the sentinels to see the replicas',
    );
    return set;
  }

  /** `host:port,…` of the sentinels, as AVA_REDIS_SENTINELS takes them. */
  get sentinels(): string {
    return this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',');
  }

  /** The port the sentinels name as master now. */
  async currentMasterPort(): Promise<number> {
    const [, port] = (await this.sentinel(
      this.sentinelPorts[0],
      'sentinel',
      'get-master-addr-by-name',
      SENTINEL_MASTER,
    )) as string[];
    return Number(port);
  }

  /** Kills the master with SIGKILL, as a crash does. */
  async killMaster(): Promise<void> {
    const child = this.servers.get(this.masterPort)!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async close(): Promise<void> {
    for (const child of this.servers.values()) await terminate(child);
    await rm(this.dir, { recursive: true, force: true });
  }

  private async info(port: number, section: string): Promise<string> {
    return (await this.sentinel(port, 'info', section)) as unknown as string;
  }

  private async sentinel(port: number, ...args: string[]): Promise<unknown[]> {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await r.connect();
      return (await r.call(args[0], ...args.slice(1))) as unknown[];
    } finally {
      r.disconnect();
    }
  }

  private async waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (await check().catch(() => false)) return;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }
}
