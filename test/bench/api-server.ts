// The API server that rows (c), (d) and (e) run against: the e2e suite's real kube-apiserver +
// etcd when the binaries are installed, else the fake one of the unit tests (rows (c) and (d)
// say so, and (e), which needs real admission, is left out with the reason).
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { APISERVER, INSTALL_HINT, isExecutable, startCluster, type Cluster } from '../e2e/cluster.js';
import { FAKE_TOKEN, FakeApiServer } from '../support/fake-apiserver.js';

/** Namespace creates in flight while filling the API server: enough to keep etcd busy. */
const CREATE_CONCURRENCY = 16;

export interface BenchApiServer {
  /** 'kube-apiserver' or 'fake API server', for the table. */
  kind: string;
  kubeconfig: string;
  /** The real cluster, for row (e); undefined on the fake. */
  cluster: Cluster | undefined;
  /** Adds namespaces team-00000... with a few labels each, as a real cluster's would have. */
  addNamespaces(count: number): Promise<void>;
  stop(): Promise<void>;
}

const labelsOf = (i: number, name: string) => ({
  'kubernetes.io/metadata.name': name,
  'realip.io/inject': i % 3 === 0 ? 'enabled' : 'disabled',
  team: `team-${i % 97}`,
  env: i % 2 ? 'prod' : 'staging',
});

const nameOf = (i: number) => `team-${String(i).padStart(5, '0')}`;

/**
 * Runs `probe` until it resolves, for when the API server has yet to pick up new admission
 * configuration (a second or so); after `giveUpMs` its last error is thrown.
 */
export async function retryUntilAdmitted(probe: () => Promise<void>, giveUpMs: number): Promise<void> {
  const deadline = Date.now() + giveUpMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** A client of the real API server: JSON over its HTTPS, with the cluster's token and CA. */
export function apiClient(cluster: Cluster, maxSockets: number) {
  const ca = readFileSync(join(cluster.dir, 'certs', 'apiserver.crt'));
  const agent = new Agent({ keepAlive: true, maxSockets, ca });
  const url = new URL(cluster.server);
  const call = (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path,
          method,
          agent,
          headers: { authorization: `Bearer ${cluster.token}`, 'content-type': contentType, accept: 'application/json' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  return { call, close: () => agent.destroy() };
}

async function realApiServer(cluster: Cluster): Promise<BenchApiServer> {
  let added = 0;
  return {
    kind: 'kube-apiserver',
    kubeconfig: cluster.kubeconfig,
    cluster,
    addNamespaces: async (count) => {
      const client = apiClient(cluster, CREATE_CONCURRENCY);
      const end = added + count;
      const worker = async () => {
        while (added < end) {
          const i = added++;
          const name = nameOf(i);
          const { status, json } = await client.call('POST', '/api/v1/namespaces', { metadata: { name, labels: labelsOf(i, name) } });
          if (status !== 201) throw new Error(`creating namespace ${name}: HTTP ${status} ${JSON.stringify(json?.message)}`);
        }
      };
      try {
        await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
      } finally {
        client.close();
      }
    },
    stop: () => cluster.stop(),
  };
}

async function fakeApiServer(dir: string): Promise<BenchApiServer> {
  const server = new FakeApiServer();
  await server.start();
  const kubeconfig = join(dir, 'fake-kubeconfig.json');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP: client-node allows it only with TLS verification off.
      clusters: [{ name: 'fake', cluster: { server: server.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: FAKE_TOKEN } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    }),
  );
  let added = 0;
  return {
    kind: 'fake API server',
    kubeconfig,
    cluster: undefined,
    addNamespaces: async (count) => {
      for (const end = added + count; added < end; added++) server.set(nameOf(added), labelsOf(added, nameOf(added)));
    },
    stop: () => server.close(),
  };
}

/** The real API server when it can start; otherwise the fake one and the reason, for the notes. */
export async function startBenchApiServer(dir: string): Promise<{ api: BenchApiServer; whyNotReal?: string }> {
  if (!(await isExecutable(APISERVER))) {
    return { api: await fakeApiServer(dir), whyNotReal: `kube-apiserver not found at ${APISERVER} (${INSTALL_HINT})` };
  }
  try {
    return { api: await realApiServer(await startCluster()) };
  } catch (err) {
    return { api: await fakeApiServer(dir), whyNotReal: `the e2e API server did not start: ${(err as Error).message.split('\n')[0]}` };
  }
}
