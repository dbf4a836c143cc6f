import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stablePort, terminate, waitForPort } from './test-ports.js';

/** Where Redis puts a cluster node's bus: its port plus this. */
const CLUSTER_BUS_OFFSET = 10_000;

/** A Redis Cluster of a test's own on loopback: three masters (no replicas), made with `redis-cli --cluster create`. */
export class OwnRedisCluster {
  private constructor(
    private readonly dir: string,
    readonly ports: number[],
    private readonly servers: ChildProcess[],
  ) {}

  static async start(): Promise<OwnRedisCluster> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ava-cluster-'));
    // Each node's cluster bus listens at its port + 10,000: that port must be free and outside the ephemeral range too
    // (a bus port taken by a client's source port kept a node from starting), and no two nodes may share either.
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) ports.push(await stablePort({ alsoFree: CLUSTER_BUS_OFFSET, avoid: ports }));
    const servers = ports.map((port) =>
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--appendonly',
          'yes',
          '--appenddirname',
          `aof-${port}`,
          '--appendfsync',
          'always',
          '--maxmemory-policy',
          'noeviction',
          '--save',
          '',
        ],
        { stdio: 'ignore' },
      ),
    );
    for (const port of ports)
      if (!(await waitForPort(port, 5_000))) throw new Error(`redis-server did not start on ${port}`);
    execFileSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { stdio: 'ignore' },
    );
    const cluster = new OwnRedisCluster(dir, ports, servers);
    for (
      let i = 0;
      i < 50 &&
      !execFileSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' }).includes(
        'cluster_state:ok',
      );
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    return cluster;
  }

  /** `host:port,…` of the nodes, as AVA_REDIS_CLUSTER_NODES takes them. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  async close(): Promise<void> {
    for (const s of this.servers) await terminate(s);
    await rm(this.dir, { recursive: true, force: true });
  }
}
