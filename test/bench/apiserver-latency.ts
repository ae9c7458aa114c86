// (e) What the webhook adds to `create deployment` through a real kube-apiserver, against what a
// floor webhook adds: a bare Fastify server returning the same patch, warnings and audit
// annotation without checks or a namespace lookup. Three namespaces, one per case, measured in
// interleaved batches so drift over the run hits all three alike; the real `serve` process runs
// at its default log level (info, one line per admission).
import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import type { Cluster } from '../e2e/cluster.js';
import { deployment } from '../fixtures/objects.js';
import { apiClient, retryUntilAdmitted } from './api-server.js';
import { percentile, startServer } from './http-load.js';
import { startServe } from './serve-process.js';
import type { BenchFiles } from './workload.js';

/**
 * Creates in flight: 8 as issue 11 measured, where the two CPUs are saturated and the API server
 * opens new connections to the webhooks for many calls; 1, where neither happens.
 */
export const CLIENT_COUNTS = [8, 1] as const;
const CREATES_PER_BATCH = 64;
const CASES = ['project', 'floor', 'none'] as const;
type Case = (typeof CASES)[number];
const SELECTOR_LABEL = 'bench.realip.io/webhook';
const WARM_UP_GIVE_UP_MS = 30_000;
const CREATE_ATTEMPTS = 3;

export interface LatencyBatch {
  /** Median create latency (ms) in each namespace in this batch. */
  median: Record<Case, number>;
  p99: Record<Case, number>;
  /** TLS connections the API server opened to the floor webhook, per call to it. */
  floorConnectionsPerCall: number;
}

function webhookConfiguration(name: Case, port: number, caBundle: string) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: `bench-${name}` },
    webhooks: [
      {
        name: `${name}.bench.realip.io`,
        clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle },
        rules: [{ operations: ['CREATE'], apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments'] }],
        namespaceSelector: { matchLabels: { [SELECTOR_LABEL]: name } },
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        // Fail, not Ignore: an unanswered review must show up as an error, not as a fast create.
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
      },
    ],
  };
}

/** With `cpu`, both webhooks run on that CPU only (taskset). */
export async function apiServerLatency(cluster: Cluster, files: BenchFiles, batches: number, nodeFlags: string[], progress: (line: string) => void, cpu?: number) {
  const client = apiClient(cluster, Math.max(...CLIENT_COUNTS));
  const serve = await startServe(files, cluster.kubeconfig, undefined, nodeFlags, cpu);
  // The same node flags as serve: they are the runtime's settings, not webhook logic.
  const floor = await startServer('floor', files, cpu, nodeFlags);
  const namespaceOf = (c: Case) => `bench-${c}`;
  const floorCa = readFileSync(files.ca);
  let reads = 0;
  const floorConnections = () =>
    new Promise<number>((resolve, reject) => {
      // Each read opens a connection of its own, counted too: taken out here.
      reads++;
      httpsGet({ host: '127.0.0.1', port: floor.port, path: '/connections', ca: floorCa, agent: false }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => resolve((JSON.parse(text) as { connections: number }).connections - reads));
      }).on('error', reject);
    });
  let storageRetries = 0;
  try {
    await serve.ready();
    const caBundle = readFileSync(files.ca).toString('base64');
    for (const c of CASES) {
      const labels: Record<string, string> = { [SELECTOR_LABEL]: c, ...(c === 'project' ? { 'realip.io/inject': 'enabled' } : {}) };
      await client.call('POST', '/api/v1/namespaces', { metadata: { name: namespaceOf(c), labels } });
    }
    await client.call('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', webhookConfiguration('project', serve.port, caBundle));
    await client.call('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', webhookConfiguration('floor', floor.port, caBundle));

    const object = deployment() as { metadata: Record<string, unknown> };
    delete object.metadata['name'];
    object.metadata['generateName'] = 'bench-';
    /** The create's latency, once the right webhook (or none) is seen to have changed it. */
    const checked = (c: Case, json: any, ms: number) => {
      const mutated = json.spec.template.spec.affinity !== undefined;
      if (mutated !== (c !== 'none')) throw new Error(`create in ${namespaceOf(c)} was ${mutated ? '' : 'not '}mutated`);
      return ms;
    };
    /**
     * One create; checks that the right webhook (or none) changed it. A storage timeout of the
     * API server ("please try again", etcd slow to sync on this machine's disk) is retried and
     * counted, and only the create that succeeded is timed; any webhook error ends the bench.
     */
    const create = async (c: Case): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        const started = performance.now();
        const { status, json } = await client.call('POST', `/apis/apps/v1/namespaces/${namespaceOf(c)}/deployments`, { ...object, metadata: { ...object.metadata, namespace: namespaceOf(c) } });
        const ms = performance.now() - started;
        if (status === 201) return checked(c, json, ms);
        const message = String(json?.message ?? '');
        if (status >= 500 && !message.includes('webhook') && attempt < CREATE_ATTEMPTS) {
          storageRetries++;
          continue;
        }
        throw new Error(`create in ${namespaceOf(c)}: HTTP ${status} ${JSON.stringify(message)}`);
      }
    };

    // The API server picks up new webhook configurations within a second or so.
    progress('(e) waiting for the API server to call both webhooks');
    await retryUntilAdmitted(async () => {
      await create('project');
      await create('floor');
    }, WARM_UP_GIVE_UP_MS);

    const run = async (c: Case, clients: number) => {
      const latencies: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next++ < CREATES_PER_BATCH) latencies.push(await create(c));
      };
      await Promise.all(Array.from({ length: clients }, worker));
      return latencies.sort((a, b) => a - b);
    };
    const results = new Map<number, LatencyBatch[]>();
    for (const clients of CLIENT_COUNTS) {
      const batchesOfClients: LatencyBatch[] = [];
      // Batch 0 warms all three paths up and is not counted.
      for (let batch = 0; batch <= batches; batch++) {
        if (batch > 0) progress(`(e) ${clients} client(s), batch ${batch}/${batches}`);
        const order = CASES.map((_, i) => CASES[(i + batch) % CASES.length]!);
        const median = {} as Record<Case, number>;
        const p99 = {} as Record<Case, number>;
        let floorConnectionsPerCall = 0;
        for (const c of order) {
          const opened = c === 'floor' ? await floorConnections() : 0;
          const latencies = await run(c, clients);
          if (c === 'floor') floorConnectionsPerCall = ((await floorConnections()) - opened) / CREATES_PER_BATCH;
          median[c] = percentile(latencies, 0.5);
          p99[c] = percentile(latencies, 0.99);
        }
        if (batch > 0) batchesOfClients.push({ median, p99, floorConnectionsPerCall });
      }
      results.set(clients, batchesOfClients);
    }
    return { results, storageRetries };
  } finally {
    client.close();
    await serve.child.stop();
    await floor.stop();
  }
}
