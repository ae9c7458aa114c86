// The webhook as a platform team runs it, on the nodes of node-cluster.ts: the image test:image
// builds, imported into each node's containerd, installed with the chart (only the image set), and
// the helpers the node suites share: its Pods, their metrics, a stream of creates through the API
// server and a count of what was stored unmutated.
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../e2e/cluster.js';
import { getJson, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import { CHART_DIR, NAMESPACE, RELEASE, helmTools, runHelmAsync, valuesFile } from '../helm/helm.js';
import { buildah, buildImage, missingImageTools, removeImage, removeLeftovers, TEST_IMAGE } from '../image/image.js';
import { missingNodePrerequisites, startNodeCluster, type NodeCluster } from './node-cluster.js';
import { total } from '../support/prometheus.js';

export { CHART_DIR, NAMESPACE, RELEASE };
export const SELECTOR = 'app.kubernetes.io/name=realip-webhook';
export const ENABLED_LABEL = 'realip.io/inject=enabled';
export const TPROXY = 'sidecar.istio.io/interceptionMode';
const METRICS_PORT = 9090;

/** The image's name in the nodes' containerd, as the chart's values name it. */
export const IMAGE_VALUES = {
  repository: TEST_IMAGE.slice(0, TEST_IMAGE.lastIndexOf(':')),
  tag: TEST_IMAGE.slice(TEST_IMAGE.lastIndexOf(':') + 1),
  pullPolicy: 'Never',
};

/** Builds the image as test:image does and writes it as a docker archive for `ctr images import`. */
export async function imageArchive(dir: string): Promise<{ archive: string; seconds: number }> {
  const started = performance.now();
  await buildImage(TEST_IMAGE);
  const archive = join(dir, 'image.tar');
  await buildah(['push', TEST_IMAGE, `docker-archive:${archive}:${TEST_IMAGE}`], { timeoutMs: 120_000 });
  return { archive, seconds: (performance.now() - started) / 1000 };
}

export async function helm(c: Cluster, args: string[]): Promise<string> {
  const r = await runHelmAsync([...args, '--kubeconfig', c.kubeconfig]);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.trim()}`);
  return r.stdout;
}

/** `helm install` of the chart with only the image set (and `values`). */
export async function installChart(c: Cluster, values: Record<string, unknown> = {}): Promise<void> {
  await helm(c, ['install', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--create-namespace', '--values', valuesFile({ image: IMAGE_VALUES, ...values })]);
}

/** Creates `ns` opted in, and waits until the webhook mutates there (the API server and the webhook cache namespaces a moment). */
export async function optedInNamespace(c: Cluster, ns: string): Promise<void> {
  await c.kubectl(['create', 'namespace', ns]);
  await c.kubectl(['label', 'namespace', ns, ENABLED_LABEL]);
  await pollUntil(`the webhook to mutate a dry-run Deployment in ${ns}`, async () => {
    const { stdout } = await c.kubectl(['create', 'deployment', 'probe', '--image=registry.k8s.io/echoserver:1.4', '-n', ns, '--dry-run=server', '-o', 'json']);
    return (JSON.parse(stdout) as Obj).spec.template.metadata.annotations?.[TPROXY] === 'TPROXY' || undefined;
  }, { timeoutMs: 60_000 });
}

export const isReady = (p: Obj) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: Obj) => c.type === 'Ready' && c.status === 'True');

export async function webhookPods(c: Cluster): Promise<Obj[]> {
  return (await getJson(c, ['pods', '-n', NAMESPACE, '-l', SELECTOR])).items as Obj[];
}

/** Waits until the Deployment's rollout is complete: `replicas` Pods, all of the newest template, Ready. */
export async function waitRolledOut(c: Cluster, replicas = 2, timeoutMs = 180_000): Promise<Obj[]> {
  return pollUntil(`${replicas} ready webhook pods of the current template`, async () => {
    const d = await getJson(c, ['deployment', RELEASE, '-n', NAMESPACE]);
    const s = d.status ?? {};
    const done = s.observedGeneration === d.metadata.generation && s.updatedReplicas === replicas && s.readyReplicas === replicas && (s.replicas ?? 0) === replicas;
    if (!done) throw new Error(`Deployment status ${JSON.stringify(s)}`);
    const pods = await webhookPods(c);
    if (pods.length === replicas && pods.every(isReady)) return pods;
    throw new Error(`Pods ${pods.map((p) => `${p.metadata.name} on ${p.spec.nodeName}: ${isReady(p) ? 'Ready' : p.status?.phase}`).join(', ')}`);
  }, { timeoutMs, intervalMs: 250 });
}

/** GET on the host, to an address it routes (a Pod's). */
export async function httpGet(url: string, timeoutMs = 2_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.text();
}

/** The admission requests a Pod's webhook process has answered since it started. */
export async function answered(podIp: string): Promise<number> {
  return total(await httpGet(`http://${podIp}:${METRICS_PORT}/metrics`), 'realip_webhook_admission_requests_total');
}

/**
 * Admission requests answered per Pod while it runs, read every `intervalMs` from each webhook
 * Pod's /metrics; a counter that went down (the container restarted) counts from zero again.
 */
export function countPerReplica(c: Cluster, intervalMs = 500): { stop(): Promise<Record<string, number>> } {
  const last = new Map<string, number>();
  const served: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    // The first reading is the baseline of the Pods already running; later ones count from zero.
    for (let first = true; running; first = false) {
      const pods = await webhookPods(c).catch(() => []);
      await Promise.all(pods.filter((p) => p.status?.podIP).map(async (p) => {
        const key = `${p.metadata.name}@${p.spec.nodeName}`;
        const now = await answered(p.status.podIP).catch(() => undefined);
        if (now === undefined) return;
        const before = last.get(key) ?? 0;
        served[key] = (served[key] ?? 0) + (first ? 0 : now >= before ? now - before : now);
        last.set(key, now);
      }));
      await sleep(intervalMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return served;
    },
  };
}

/** The API server's REST API with the cluster's admin token. */
export function apiRequest(c: Cluster, method: string, path: string, body?: Obj): Promise<{ status: number; body: Obj }> {
  const ca = readFileSync(c.caFile);
  return new Promise((resolve, reject) => {
    const req = request(`${c.server}${path}`, {
      method,
      ca,
      headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json', accept: 'application/json' },
      timeout: 30_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Obj = {};
        try {
          parsed = JSON.parse(text) as Obj;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

export const isServiceMutated = (s: Obj) => s.spec?.externalTrafficPolicy === 'Local';
export const isDeploymentMutated = (d: Obj) =>
  d.spec?.template?.metadata?.annotations?.[TPROXY] === 'TPROXY' &&
  (d.spec?.template?.spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.length ?? 0) > 0;

function streamService(name: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
  };
}

function streamDeployment(name: string): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    // Zero replicas: the stream measures admission, not scheduling.
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/echoserver:1.4' }] } },
    },
  };
}

export interface StreamResult {
  services: number;
  deployments: number;
  /** Creates the API server refused (failClosed, or anything else that was not 201), by status. */
  refused: Record<string, number>;
  /** Names stored unmutated, as the create's response showed them. */
  unmutatedAtCreate: { services: string[]; deployments: string[] };
}

/**
 * Creates a LoadBalancer Service and a Deployment (zero replicas) in `ns`, `perSecond` objects a
 * second in all, until stop() is called; each create's response is the object as stored.
 */
export function createStream(c: Cluster, ns: string, perSecond = 8): { stop(): Promise<StreamResult> } {
  const result: StreamResult = { services: 0, deployments: 0, refused: {}, unmutatedAtCreate: { services: [], deployments: [] } };
  let running = true;
  const inFlight = new Set<Promise<void>>();
  const one = async (i: number) => {
    const service = i % 2 === 0;
    const name = `s${i}`;
    const [path, obj] = service
      ? [`/api/v1/namespaces/${ns}/services`, streamService(name)]
      : [`/apis/apps/v1/namespaces/${ns}/deployments`, streamDeployment(name)];
    const r = await apiRequest(c, 'POST', path, obj).catch((err: Error) => ({ status: 0, body: { message: err.message } as Obj }));
    if (r.status !== 201) {
      const key = `${r.status} ${String(r.body.message ?? '').slice(0, 80)}`;
      result.refused[key] = (result.refused[key] ?? 0) + 1;
      return;
    }
    if (service) {
      result.services++;
      if (!isServiceMutated(r.body)) result.unmutatedAtCreate.services.push(name);
    } else {
      result.deployments++;
      if (!isDeploymentMutated(r.body)) result.unmutatedAtCreate.deployments.push(name);
    }
  };
  const loop = (async () => {
    const start = performance.now();
    for (let i = 0; running; i++) {
      const p = one(i);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      const next = start + ((i + 1) * 1000) / perSecond;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      await Promise.all(inFlight);
      return result;
    },
  };
}

/** The stored objects of `ns` that are unmutated now. */
export async function unmutatedNow(c: Cluster, ns: string): Promise<{ services: string[]; deployments: string[] }> {
  const services = ((await getJson(c, ['services', '-n', ns])).items as Obj[]).filter((s) => s.spec.type === 'LoadBalancer' && !isServiceMutated(s));
  const deployments = ((await getJson(c, ['deployments', '-n', ns])).items as Obj[]).filter((d) => !isDeploymentMutated(d));
  return { services: services.map((s) => s.metadata.name), deployments: deployments.map((d) => d.metadata.name) };
}

/**
 * Waits up to `timeoutMs` for the Services stored unmutated to be repaired (a Service gets Local in
 * place; a workload's template is left alone, as patching it would roll its pods); returns what is
 * still unmutated then.
 */
export async function unmutatedAfterRepairs(c: Cluster, ns: string, timeoutMs = 60_000): Promise<{ services: string[]; deployments: string[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await unmutatedNow(c, ns);
    if (now.services.length === 0 || Date.now() > deadline) return now;
    await sleep(1_000);
  }
}

/** Which of the named Deployments have an Event from the webhook (reported for a user to act on). */
export async function reportedDeployments(c: Cluster, ns: string, names: string[]): Promise<string[]> {
  const events = (await getJson(c, ['events', '-n', ns])).items as Obj[];
  const fromWebhook = (e: Obj) => /realip/i.test(`${e.source?.component ?? ''} ${e.reportingComponent ?? ''} ${e.reportingController ?? ''}`);
  const reported = new Set(events.filter((e) => e.involvedObject?.kind === 'Deployment' && fromWebhook(e)).map((e) => e.involvedObject.name as string));
  return names.filter((n) => reported.has(n));
}

/** What the node suites cannot run without: the nodes' and the image's prerequisites. */
export async function missingWebhookOnNodes(): Promise<string[]> {
  const image = await missingImageTools();
  return [...(await missingNodePrerequisites()), ...(image ? [image] : [])];
}

export interface WebhookOnNodes {
  nc: NodeCluster;
  work: string;
  /** Seconds from `helm install` to both replicas Ready. */
  readySeconds: number;
  /** Stops the nodes and removes the image; throws with what was left on the host. */
  stop(): Promise<void>;
}

/** The image built and imported into two nodes, the chart installed, both replicas Ready. */
export async function startWebhookOnNodes(): Promise<WebhookOnNodes> {
  helmTools();
  await removeLeftovers();
  const work = await mkdtemp(join(tmpdir(), 'realip-image-on-nodes-'));
  let nc: NodeCluster | undefined;
  const stop = async () => {
    const failures: string[] = [];
    if (nc) {
      if (process.env.REALIP_NODE_LOGS) console.log(await nc.logs());
      const left = await nc.stop();
      if (left.length > 0) failures.push(`left behind on the host: ${left.join('; ')}`);
    }
    await removeImage(TEST_IMAGE).catch((err: Error) => failures.push(err.message));
    await rm(work, { recursive: true, force: true });
    if (failures.length > 0) throw new Error(failures.join('\n'));
  };
  try {
    const { archive, seconds } = await imageArchive(work);
    console.log(`# image ${TEST_IMAGE} built in ${seconds.toFixed(0)} s`);
    nc = await startNodeCluster(2);
    await nc.importImage(archive);
    const started = performance.now();
    await installChart(nc.cluster);
    await waitRolledOut(nc.cluster);
    const readySeconds = (performance.now() - started) / 1000;
    console.log(`# both replicas Ready ${readySeconds.toFixed(1)} s after helm install`);
    return { nc, work, readySeconds, stop };
  } catch (err) {
    const logs = nc ? await nc.logs() : '';
    await stop().catch((e: Error) => console.log(`# ${e.message}`));
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
  }
}
