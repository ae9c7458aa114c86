// (f) What matchConditions save on a realistic session through a real API server: the same
// session, in a namespace behind the shipped configuration (matchConditions) and in one behind the
// configuration older clusters get (components/before-1.30, none), both calling the same `serve`,
// interleaved round by round. Each session creates two Services (ClusterIP, LoadBalancer) and two
// Deployments, labels three of them, updates a status, restarts a rollout, and changes replicas
// once through the Deployment and once through its scale subresource.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../e2e/cluster.js';
import { adaptWebhookConfiguration, shippedWebhookConfiguration, type Obj } from '../e2e/webhook-harness.js';
import { kubernetesRelease, release } from '../kubernetes/release.js';
import { total } from '../support/prometheus.js';
import { apiClient } from './api-server.js';
import { startServe } from './serve-process.js';
import type { BenchFiles } from './workload.js';

const CONFIGS = ['conditions', 'none'] as const;
type Config = (typeof CONFIGS)[number];
const SELECTOR_LABEL = 'bench.realip.io/configuration';
/** The API server picks up a new webhook configuration within a second or so. */
const WARM_UP_MS = 3_000;
const SETTLE_MS = 300;

export interface SessionRound {
  /** Webhook calls and milliseconds of one session, per configuration. */
  calls: Record<Config, number>;
  ms: Record<Config, number>;
}

const service = (name: string, type: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { type, selector: { app: name }, ports: [{ port: 80 }] } });
const deployment = (name: string, replicas: number) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, labels: { app: name } },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] } } },
});

/** The configuration an API server of `minor` gets, sending only namespaces labelled for `config`. */
async function configuration(config: Config, minor: string, url: string, caBundle: string): Promise<Obj> {
  const shipped = adaptWebhookConfiguration(await shippedWebhookConfiguration(kubernetesRelease(minor)), url, caBundle);
  shipped.metadata = { name: `00-bench-${config}` };
  for (const webhook of shipped.webhooks as Obj[]) {
    webhook.namespaceSelector.matchExpressions.push({ key: SELECTOR_LABEL, operator: 'In', values: [config] });
  }
  return shipped;
}

export async function sessionCost(cluster: Cluster, files: BenchFiles, rounds: number, nodeFlags: string[], progress: (line: string) => void): Promise<SessionRound[]> {
  const client = apiClient(cluster, 1);
  const serve = await startServe(files, cluster.kubeconfig, undefined, nodeFlags);
  const ok = async (method: string, path: string, body?: unknown, contentType?: string) => {
    const { status, json } = await client.call(method, path, body, contentType);
    if (status >= 300) throw new Error(`${method} ${path}: HTTP ${status} ${JSON.stringify(json?.message ?? json)}`);
  };
  const merge = (path: string, body: unknown) => ok('PATCH', path, body, 'application/merge-patch+json');
  const count = async () => total(await serve.metrics(), 'realip_webhook_admission_requests_total');
  /** The metric is counted once each answer is written: read it once it has stopped moving. */
  const calls = async () => {
    let last = await count();
    for (;;) {
      await sleep(SETTLE_MS);
      const now = await count();
      if (now === last) return now;
      last = now;
    }
  };
  try {
    await serve.ready();
    const caBundle = readFileSync(files.ca).toString('base64');
    const url = `https://127.0.0.1:${serve.port}/mutate`;
    // This release's own configuration, and the one 1.20 to 1.29 get: the same less matchConditions.
    for (const [config, minor] of [['conditions', release.minor], ['none', '1.20']] as const) {
      await ok('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', await configuration(config, minor, url, caBundle));
    }
    await sleep(WARM_UP_MS);

    const session = async (ns: string) => {
      const core = `/api/v1/namespaces/${ns}`;
      const apps = `/apis/apps/v1/namespaces/${ns}`;
      await ok('POST', `${core}/services`, service('web', 'ClusterIP'));
      await ok('POST', `${core}/services`, service('web-lb', 'LoadBalancer'));
      await ok('POST', `${apps}/deployments`, deployment('web', 2));
      await ok('POST', `${apps}/deployments`, deployment('api', 1));
      for (const path of [`${apps}/deployments/web`, `${core}/services/web`, `${core}/services/web-lb`]) await merge(path, { metadata: { labels: { tier: 'frontend' } } });
      await merge(`${apps}/deployments/web/status`, { status: { conditions: [{ type: 'Available', status: 'False', reason: 'Bench', message: 'set by the bench' }] } });
      await merge(`${apps}/deployments/web`, { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } });
      await merge(`${apps}/deployments/web`, { spec: { replicas: 3 } });
      await merge(`${apps}/deployments/web/scale`, { spec: { replicas: 4 } });
    };

    const results: SessionRound[] = [];
    // Round 0 warms every path up and is not counted.
    for (let round = 0; round <= rounds; round++) {
      if (round > 0) progress(`(f) session round ${round}/${rounds}`);
      const result: SessionRound = { calls: { conditions: 0, none: 0 }, ms: { conditions: 0, none: 0 } };
      const order = round % 2 ? CONFIGS : [...CONFIGS].reverse();
      for (const config of order) {
        const ns = `bench-session-${config}-${round}`;
        await ok('POST', '/api/v1/namespaces', { metadata: { name: ns, labels: { 'realip.io/inject': 'enabled', [SELECTOR_LABEL]: config } } });
        // The webhook's namespace cache learns of it from its watch; a miss would cost a GET.
        await sleep(200);
        const before = await calls();
        const started = performance.now();
        await session(ns);
        result.ms[config] = performance.now() - started;
        result.calls[config] = (await calls()) - before;
      }
      if (round > 0) results.push(result);
    }
    return results;
  } finally {
    client.close();
    await serve.child.stop();
  }
}
