import net from 'node:net';
import { stablePort } from './test-ports.js';

/**
 * A loopback TCP proxy in front of a real service, for fault tests: `cut()` refuses new connections and drops
 * every open one (the service looks unreachable), `restore()` brings it back on the same port.
 */
export class TcpProxy {
  private server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly targetPort: number, readonly port: number, server: net.Server) {
    this.server = server;
  }

  /** Starts a proxy on a free loopback port (outside the ephemeral range) forwarding to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, await stablePort(), net.createServer());
    await proxy.restore();
    return proxy;
  }

  /** Listens again and forwards new connections. */
  async restore(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', r));
  }

  /** Stops listening and drops every open connection. */
  async cut(): Promise<void> {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Shuts the proxy down for good. */
  async close(): Promise<void> {
    if (this.server.listening) await this.cut();
  }
}
