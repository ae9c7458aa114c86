// Which requests reach the webhook under the shipped configuration, on the release under test.
// From 1.30 its matchConditions keep in the API server the requests whose answer is known to be
// empty (a ClusterIP Service, an UPDATE that leaves the pod template, the replicas and the
// strategy alone); before 1.30 (components/before-1.30) every request of the listed kinds reaches
// the webhook. The webhook's own admission metrics are the witness.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { atLeast, release } from '../kubernetes/release.js';
import type { ServingCerts } from '../support/certs.js';
import { total } from '../support/prometheus.js';
import { startCluster, type Cluster } from './cluster.js';
import { nodeManifest } from './node-manifest.js';
import {
  adaptWebhookConfiguration,
  generateCertsForRegistration,
  getJson,
  manifestStream,
  missingPrerequisites,
  pollUntil,
  shippedWebhookConfiguration,
  startWebhook,
  type Obj,
  type Webhook,
} from './webhook-harness.js';

const CONDITIONS = atLeast('1.30');
const IMAGE = 'registry.k8s.io/echoserver:1.4';
const ENABLED = { 'realip.io/inject': 'enabled' };
const LATER_LABEL = 'e2e.realip.io/later-webhook';
const LATER_ANNOTATION = 'e2e.realip.io/object-labels';

/** Admission requests the webhook answered, by "Kind OPERATION", with no zero entries. */
type Calls = Record<string, number>;

let cluster: Cluster;
let webhook: Webhook;
let later: Server | undefined;
let dir: string;
/** Calls the scenario saved, summed over the steps (for the closing figures). */
const seen: Calls = {};

function namespace(name: string, labels: Record<string, string>): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function service(name: string, ns: string, type: 'ClusterIP' | 'LoadBalancer'): Obj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { type, selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } };
}

function deployment(name: string, ns: string, replicas: number): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: IMAGE }] } },
    },
  };
}

async function admissions(): Promise<Calls> {
  const text = await (await fetch(webhook.metricsUrl)).text();
  const calls: Calls = {};
  for (const kind of ['Service', 'Deployment', 'ReplicaSet', 'Pod']) {
    for (const op of ['CREATE', 'UPDATE']) {
      const n = total(text, 'realip_webhook_admission_requests_total', { kind, operation: op });
      if (n > 0) calls[`${kind} ${op}`] = n;
    }
  }
  return calls;
}

let sentinels = 0;
/**
 * Runs `action` and returns the admissions it caused. The metrics are counted after each answer
 * is sent, so a dry-run LoadBalancer Service (which always reaches the webhook) follows the
 * action, and the count is read once that one is in; it is then taken out of the figures.
 */
async function callsOf(action: () => Promise<unknown>): Promise<{ calls: Calls; result: unknown }> {
  const before = await admissions();
  const result = await action();
  const probe = service(`sentinel-${++sentinels}`, 'shop', 'LoadBalancer');
  await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { stdin: manifestStream(probe) });
  const after = await pollUntil('the sentinel admission to be counted', async () => {
    const now = await admissions();
    return (now['Service CREATE'] ?? 0) > (before['Service CREATE'] ?? 0) ? now : undefined;
  });
  after['Service CREATE']! -= 1;
  const calls: Calls = {};
  for (const [key, n] of Object.entries(after)) {
    const delta = n - (before[key] ?? 0);
    if (delta > 0) {
      calls[key] = delta;
      seen[key] = (seen[key] ?? 0) + delta;
    }
  }
  return { calls, result };
}

const kubectl = (...args: string[]) => cluster.kubectl(args);

/** Opts namespace late in or out, and waits until a dry-run Deployment there shows the webhook sees it so. */
async function optLate(optedIn: boolean): Promise<void> {
  await kubectl('label', 'namespace', 'late', optedIn ? 'realip.io/inject=enabled' : 'realip.io/inject-');
  await pollUntil(`the webhook to see namespace late opted ${optedIn ? 'in' : 'out'}`, async () => {
    const { stdout } = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: manifestStream(deployment('probe', 'late', 1)) });
    return Boolean((JSON.parse(stdout) as Obj).spec.template.spec.affinity) === optedIn ? true : undefined;
  });
}

/**
 * A mutating webhook of another product, called after ours (its configuration sorts after
 * 00-realip-webhook): it writes the object's labels into a pod template annotation, so that a
 * label-only UPDATE leaves the API server with a changed pod template.
 */
async function startLaterWebhook(certs: ServingCerts): Promise<{ url: string; server: Server }> {
  const server = createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString()) as Obj;
      const object = review.request.object as Obj;
      const labels = Object.entries((object.metadata.labels ?? {}) as Record<string, string>).sort().map(([k, v]) => `${k}=${v}`).join(',');
      const annotations = (object.spec.template.metadata.annotations ?? {}) as Record<string, string>;
      const patch = annotations[LATER_ANNOTATION] === labels
        ? []
        : [{ op: 'add', path: '/spec/template/metadata/annotations', value: { ...annotations, [LATER_ANNOTATION]: labels } }];
      const response = { uid: review.request.uid, allowed: true, ...(patch.length && { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }) };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: review.apiVersion, kind: 'AdmissionReview', response }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `https://127.0.0.1:${port}/`, server };
}

const missing = await missingPrerequisites();
if (missing.length > 0) {
  test('prerequisites of the matchConditions suite', () => {
    throw new Error(missing.join('\n'));
  });
}

describe(`which requests reach the webhook on ${release.version} (${CONDITIONS ? 'matchConditions' : 'no matchConditions before 1.30'})`, {
  skip: missing.length > 0 && 'prerequisites missing (see above)',
  timeout: 240_000,
}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'realip-match-conditions-'));
    cluster = await startCluster();
    const certs = generateCertsForRegistration(join(dir, 'certs'));
    webhook = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir, name: 'webhook', extraArgs: ['--watch-nodes'] });
    const config = adaptWebhookConfiguration(await shippedWebhookConfiguration(), webhook.url, certs.caBundle);
    const laterWebhook = await startLaterWebhook(certs);
    later = laterWebhook.server;
    const laterConfig = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'zz-e2e-later' },
      webhooks: [{
        name: 'later.e2e.realip.io',
        clientConfig: { url: laterWebhook.url, caBundle: certs.caBundle },
        namespaceSelector: { matchLabels: { [LATER_LABEL]: 'enabled' } },
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments'], operations: ['CREATE', 'UPDATE'] }],
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        reinvocationPolicy: 'Never',
        failurePolicy: 'Fail',
      }],
    };
    await cluster.kubectl(['apply', '-f', '-'], { stdin: manifestStream(config, laterConfig) });
    await cluster.kubectl(['apply', '-f', '-'], { stdin: nodeManifest('node-a', 'True', 'a') + nodeManifest('node-b', 'True', 'b') });
    await cluster.kubectl(['apply', '-f', '-'], {
      stdin: manifestStream(
        namespace('shop', ENABLED),
        namespace('strict', { ...ENABLED, 'realip.io/anti-affinity': 'required' }),
        namespace('late', { [LATER_LABEL]: 'enabled' }),
      ),
    });
    await pollUntil('the webhook to count 2 nodes and mutate in shop', async () => {
      const { stdout, stderr } = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: manifestStream(deployment('probe', 'strict', 3)) });
      return (JSON.parse(stdout) as Obj).spec.template.spec.affinity && /> 2 schedulable nodes/.test(stderr) ? true : undefined;
    });
  }, { timeout: 120_000 });

  after(async () => {
    if (Object.keys(seen).length) console.log(`# admissions the scenario's steps sent to the webhook on ${release.version}: ${JSON.stringify(seen)}`);
    later?.close();
    await webhook?.stop();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('apply an application: only the LoadBalancer Service and the Deployments reach the webhook', async () => {
    const { calls } = await callsOf(() =>
      cluster.kubectl(['apply', '-f', '-'], {
        stdin: manifestStream(service('web', 'shop', 'ClusterIP'), service('web-lb', 'shop', 'LoadBalancer'), deployment('web', 'shop', 2), deployment('api', 'shop', 1)),
      }));
    assert.deepEqual(calls, CONDITIONS ? { 'Service CREATE': 1, 'Deployment CREATE': 2 } : { 'Service CREATE': 2, 'Deployment CREATE': 2 });
    assert.equal((await getJson(cluster, ['service', 'web-lb', '-n', 'shop'])).spec.externalTrafficPolicy, 'Local');
    assert.ok((await getJson(cluster, ['deployment', 'web', '-n', 'shop'])).spec.template.spec.affinity.podAntiAffinity);
  });

  test('kubectl scale goes through the scale subresource, which no rule lists: it never reaches the webhook', async () => {
    const { calls } = await callsOf(() => kubectl('scale', 'deployment', 'web', '-n', 'shop', '--replicas=3'));
    assert.deepEqual(calls, {});
    assert.equal((await getJson(cluster, ['deployment', 'web', '-n', 'shop'])).spec.replicas, 3);
  });

  test('kubectl label: only the LoadBalancer Service still reaches the webhook', async () => {
    const { calls } = await callsOf(async () => {
      await kubectl('label', 'deployment', 'web', '-n', 'shop', 'tier=frontend');
      await kubectl('label', 'service', 'web', '-n', 'shop', 'tier=frontend');
      await kubectl('label', 'service', 'web-lb', '-n', 'shop', 'tier=frontend');
    });
    assert.deepEqual(calls, CONDITIONS ? { 'Service UPDATE': 1 } : { 'Deployment UPDATE': 1, 'Service UPDATE': 2 });
  });

  test('a status update goes through the status subresource: it never reaches the webhook', async () => {
    const status = { status: { conditions: [{ type: 'Available', status: 'False', reason: 'E2E', message: 'set by the test' }] } };
    const { calls } = await callsOf(() => kubectl('patch', 'deployment', 'web', '-n', 'shop', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)));
    assert.deepEqual(calls, {});
  });

  test('kubectl rollout restart changes the pod template: it reaches the webhook, which has nothing left to add', async () => {
    const before = await getJson(cluster, ['deployment', 'web', '-n', 'shop']);
    const { calls } = await callsOf(() => kubectl('rollout', 'restart', 'deployment', 'web', '-n', 'shop'));
    assert.deepEqual(calls, { 'Deployment UPDATE': 1 });
    const afterRestart = await getJson(cluster, ['deployment', 'web', '-n', 'shop']);
    assert.deepEqual(afterRestart.spec.template.spec.affinity, before.spec.template.spec.affinity);
  });

  test('a replicas change outside the scale subresource still reaches the webhook, and its Pending warning reaches kubectl', async () => {
    const created = await cluster.kubectl(['create', '-f', '-'], { stdin: manifestStream(deployment('db', 'strict', 2)) });
    assert.match(created.stderr, /replicas=2 on 2 schedulable nodes and maxSurge=25%: a rollout will deadlock/);
    const scaled = await callsOf(() => kubectl('scale', 'deployment', 'db', '-n', 'strict', '--replicas=3'));
    assert.deepEqual(scaled.calls, {}, 'kubectl scale: the webhook is not asked, so no warning, with or without matchConditions');
    const { calls, result } = await callsOf(() => kubectl('patch', 'deployment', 'db', '-n', 'strict', '--type=merge', '-p', '{"spec":{"replicas":4}}'));
    assert.deepEqual(calls, { 'Deployment UPDATE': 1 });
    assert.match((result as { stderr: string }).stderr, /^Warning: realip-webhook: required anti-affinity on kubernetes\.io\/hostname fits 1 pod per node, but replicas=4 > 2 schedulable nodes: 2 pod\(s\) will stay Pending/m);
  });

  test('reinvocation: a later webhook that changes a created Deployment calls the webhook again', async () => {
    await optLate(true);
    const { calls } = await callsOf(() => cluster.kubectl(['create', '-f', '-'], { stdin: manifestStream(deployment('cache', 'late', 1)) }));
    assert.deepEqual(calls, { 'Deployment CREATE': 2 }, 'the first pass, then again after the later webhook changed the object');
    const stored = await getJson(cluster, ['deployment', 'cache', '-n', 'late']);
    assert.equal(stored.spec.template.metadata.annotations[LATER_ANNOTATION], 'app=cache');
    assert.ok(stored.spec.template.spec.affinity.podAntiAffinity);
  });

  test(`a label-only UPDATE whose pod template a later webhook changes: ${CONDITIONS ? 'the webhook is skipped in the first pass, so the API server never reinvokes it' : 'reinvoked, the webhook mutates the template'}`, async () => {
    // Created before the namespace opted in: nothing of ours in its template.
    await optLate(false);
    await cluster.kubectl(['create', '-f', '-'], { stdin: manifestStream(deployment('old', 'late', 1)) });
    await optLate(true);

    const { calls } = await callsOf(() => kubectl('label', 'deployment', 'old', '-n', 'late', 'tier=backend'));
    const stored = await getJson(cluster, ['deployment', 'old', '-n', 'late']);
    assert.equal(stored.spec.template.metadata.annotations[LATER_ANNOTATION], 'app=old,tier=backend', 'the later webhook changed the template');
    if (CONDITIONS) {
      assert.deepEqual(calls, {});
      assert.equal(stored.spec.template.spec.affinity, undefined, 'the template changed without the webhook seeing it');
    } else {
      assert.deepEqual(calls, { 'Deployment UPDATE': 2 });
      assert.ok(stored.spec.template.spec.affinity.podAntiAffinity);
    }
  });
});
