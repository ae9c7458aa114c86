// A TCP relay on loopback between a client and an upstream port, which a test can freeze: the
// connections open at that moment stop forwarding bytes either way but stay open, as behind a
// NAT or load balancer that forgot them, or during a control-plane failover. Connections made
// after the freeze are forwarded as usual, as a client that reconnects would find.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export class TcpRelay {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private readonly frozen = new WeakSet<[net.Socket, net.Socket]>();
  /** Connections relayed so far. */
  connections = 0;

  private constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => this.relay(client));
  }

  static async start(upstreamPort: number): Promise<TcpRelay> {
    const relay = new TcpRelay(upstreamPort);
    await new Promise<void>((resolve, reject) => {
      relay.server.once('error', reject);
      relay.server.listen(0, '127.0.0.1', resolve);
    });
    return relay;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops forwarding on every open connection, keeping the sockets open; returns how many. */
  freeze(): number {
    for (const pair of this.pairs) {
      const [client, upstream] = pair;
      this.frozen.add(pair);
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      // A frozen connection stays open on the client's side whatever the server does: a server
      // that ends its side (a watch's timeoutSeconds, say) is not heard of behind a lost NAT entry.
      if (this.frozen.has(pair)) return;
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    for (const socket of pair) {
      socket.on('error', end);
      socket.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
