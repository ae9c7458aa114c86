// Free TCP ports on 127.0.0.1, for servers that run in another process (the CLI, etcd,
// kube-apiserver) and so must be told their port up front instead of listening on port 0.
// The kernel picks each port and it is released before use: another process could take it in
// between, which is rare enough on a test machine.
import { createServer, type AddressInfo, type Server } from 'node:net';

/** `n` distinct free ports: every listener stays open until all the ports are known, so they differ. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<Server>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}
