import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';

/**
 * A free loopback port outside the kernel's ephemeral range, for a test server that goes away while clients keep
 * reconnecting. A port from the ephemeral range can be handed to one of those clients as its own source port: on
 * loopback the connect then succeeds to itself (TCP self-connect), the client holds a socket talking to itself, and
 * the restarted server never sees it. `avoid`: ports already taken by the caller's other servers.
 */
export async function stablePort(opts: { alsoFree?: number; avoid?: readonly number[] } = {}): Promise<number> {
  const [low] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999'))
    .trim()
    .split(/\s+/)
    .map(Number);
  // With `alsoFree` (a Redis Cluster node's bus listens at its port + 10,000), that port must stay below the
  // ephemeral range and be free too.
  const offset = opts.alsoFree ?? 0;
  const floor = 10_000;
  const ceiling = Math.max(floor + 1_000, Math.min(low, 32_768) - offset);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * (ceiling - floor));
    if (opts.avoid?.some((p) => p === port || p + offset === port || port + offset === p)) continue;
    if ((await canListen(port)) && (offset === 0 || (await canListen(port + offset)))) return port;
  }
  throw new Error(`no free loopback port in [${floor}, ${ceiling})`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** Waits until something accepts connections on 127.0.0.1:`port`; false after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect(port)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Sends SIGTERM to a child process and waits until it has exited. */
export async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
