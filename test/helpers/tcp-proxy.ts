import net from 'node:net';
import { stablePort } from './test-ports.js';

/** What a {@link TcpProxy.holdAt} caught: the bytes held on one connection, and what to do with them. */
export interface HeldTraffic {
  /** Forwards the held bytes and everything after them, as if nothing had happened (only late). */
  release(): void;
  /** Discards the held bytes and closes that connection. */
  drop(): void;
}

interface Tap {
  match: (chunk: Buffer) => boolean;
  hold: 'request' | 'response';
  caught: (held: HeldTraffic) => void;
}

/**
 * A loopback TCP proxy in front of a real service, for fault tests: `cut()` refuses new connections and drops
 * every open one (the service looks unreachable), `restore()` brings it back on the same port, and `holdAt()` stops
 * one connection at a chosen request (before it reaches the service, or after it did but before its answer reaches
 * the client), so a test can kill the client at a precise point.
 */
export class TcpProxy {
  private server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private tap: Tap | undefined;

  private constructor(
    private readonly targetPort: number,
    readonly port: number,
    server: net.Server,
  ) {
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
      }
      this.forward(client, upstream);
    });
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', r));
  }

  /**
   * Resolves when a client sends a chunk that `match` accepts. With `request`, that chunk and everything after it
   * on its connection are held before reaching the service; with `response`, the chunk goes through and the
   * service's answers on that connection are held before reaching the client. One tap at a time.
   */
  holdAt(match: (chunk: Buffer) => boolean, hold: 'request' | 'response'): Promise<HeldTraffic> {
    return new Promise((caught) => (this.tap = { match, hold, caught }));
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

  private forward(client: net.Socket, upstream: net.Socket): void {
    const heldUp: Buffer[] = [];
    const heldDown: Buffer[] = [];
    let holding: 'request' | 'response' | undefined;
    // A client that goes away while its request is held: the request may still be released to the service after.
    let clientGone = false;
    const held: HeldTraffic = {
      release: () => {
        const mode = holding;
        holding = undefined;
        for (const b of mode === 'request' ? heldUp.splice(0) : heldDown.splice(0))
          (mode === 'request' ? upstream : client).write(b);
        if (clientGone) upstream.end();
      },
      drop: () => {
        heldUp.length = heldDown.length = 0;
        client.destroy();
        upstream.destroy();
      },
    };
    client.on('data', (chunk: Buffer) => {
      const tap = this.tap;
      if (!holding && tap?.match(chunk)) {
        this.tap = undefined;
        holding = tap.hold;
        tap.caught(held);
      }
      if (holding === 'request') heldUp.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holding === 'response') heldDown.push(chunk);
      else client.write(chunk);
    });
    const clientClosed = () => {
      clientGone = true;
      if (holding !== 'request') upstream.end();
    };
    client.on('end', clientClosed);
    client.on('error', () => {
      client.destroy();
      clientClosed();
    });
    upstream.on('end', () => client.end());
    upstream.on('error', () => {
      client.destroy();
      upstream.destroy();
    });
  }
}
