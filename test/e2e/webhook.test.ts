// End to end: a real kube-apiserver (1.20 or 1.37, KUBE_VERSION) calls the real built webhook (node dist/cli.js serve),
// registered with the MutatingWebhookConfiguration shipped in manifests/base. kubectl is the
// client, as a user would drive it; every scenario asserts on the object read back from the API
// server (and on the warnings kubectl prints). There are no controllers: Pods stay Pending and
// Deployments make no ReplicaSets, so nothing here depends on anything running.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { atLeast, release } from '../kubernetes/release.js';
import type { ServingCerts } from '../support/certs.js';
import { startCluster, type Cluster } from './cluster.js';
import {
  CRONJOB_VERSION,
  cronJob,
  deployment,
  HOSTNAME,
  IMAGE,
  job,
  namespace,
  pod,
  readyNode,
  restricted,
  service,
  workload,
  ZONE,
} from './manifests.js';
import {
  adaptWebhookConfiguration,
  admissionLog,
  generateCertsForRegistration,
  getJson,
  manifestStream,
  missingPrerequisites,
  pollUntil,
  scenarioRunner,
  shippedWebhookConfiguration,
  startWebhook,
  type Obj,
  type Webhook,
} from './webhook-harness.js';

const TPROXY_KEY = 'sidecar.istio.io/interceptionMode';
const ENABLED = { 'realip.io/inject': 'enabled' };
const SCENARIO_TIMEOUT_MS = 90_000;

let cluster: Cluster;
let certs: ServingCerts;
let workDir: string;
let shipped: Obj;
/** The webhook the shipped configuration points at; restarted on the same port when flags change. */
let webhook: Webhook;
/** Every webhook process started, for the log tails printed on failure. */
const started: Webhook[] = [];

// ---------------------------------------------------------------------------------------------
// kubectl

/** `kubectl create -f -`: objects are created in order; stderr carries the admission warnings. */
async function create(...objects: Obj[]) {
  return cluster.kubectl(['create', '-f', '-'], { stdin: manifestStream(...objects) });
}

async function createNamespace(name: string, labels: Record<string, string> = {}) {
  await create(namespace(name, labels));
}

const get = (kind: string, name: string, ns: string) => getJson(cluster, [kind, name, '-n', ns]);

/** What the API server would store for these objects, webhooks included, without storing it. */
async function dryRun(...objects: Obj[]) {
  return cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: manifestStream(...objects) });
}

/**
 * Waits until the webhook acts on namespace `ns`. The API server caches webhook configurations
 * and namespace labels briefly, and the webhook caches namespaces: a server-side dry run of a
 * NodePort Service shows when all of them have caught up.
 */
async function waitUntilMutating(ns: string, { probeLabel = 'probe' } = {}) {
  await pollUntil(`the webhook to mutate a dry-run NodePort Service in namespace ${ns}`, async () => {
    const { stdout } = await dryRun(service(probeLabel, ns, 'NodePort'));
    return (JSON.parse(stdout) as Obj).spec.externalTrafficPolicy === 'Local' ? true : undefined;
  });
}

// ---------------------------------------------------------------------------------------------
// Reading the mutations back

const templateOf = (o: Obj): Obj => (o.kind === 'Pod' ? o : o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template);
const interception = (o: Obj): string | undefined => templateOf(o).metadata?.annotations?.[TPROXY_KEY];
const podAntiAffinity = (o: Obj): Obj | undefined => templateOf(o).spec.affinity?.podAntiAffinity;

/** The single anti-affinity term the webhook adds, on the workload's own selector. */
function assertSpread(o: Obj, mode: 'preferred' | 'required', topologyKey = HOSTNAME) {
  const anti = podAntiAffinity(o);
  const where = `${o.kind}/${o.metadata.name}`;
  assert.ok(anti, `${where}: podAntiAffinity expected, got affinity ${JSON.stringify(templateOf(o).spec.affinity)}`);
  const term = { labelSelector: { matchLabels: o.spec.selector.matchLabels }, topologyKey };
  if (mode === 'preferred') {
    assert.deepEqual(anti.preferredDuringSchedulingIgnoredDuringExecution, [{ weight: 100, podAffinityTerm: term }], where);
    assert.equal(anti.requiredDuringSchedulingIgnoredDuringExecution, undefined, where);
  } else {
    assert.deepEqual(anti.requiredDuringSchedulingIgnoredDuringExecution, [term], where);
    assert.equal(anti.preferredDuringSchedulingIgnoredDuringExecution, undefined, where);
  }
}

function assertUntouchedWorkload(o: Obj) {
  const where = `${o.kind}/${o.metadata.name}`;
  assert.equal(interception(o), undefined, `${where}: no ${TPROXY_KEY} expected`);
  assert.equal(templateOf(o).spec.affinity, undefined, `${where}: no affinity expected`);
}

const realipWarnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('Warning: realip-webhook: '));

// ---------------------------------------------------------------------------------------------
// Scenarios print as `test` names; a failure adds the webhook's log tail.

const scenario = scenarioRunner(started, SCENARIO_TIMEOUT_MS);

/** For hooks: a failure carries the webhook log tails (scenarios print them as diagnostics). */
async function withLogs(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const tails = await Promise.all(started.map(async (w) => `--- webhook ${w.name} log (tail) ---\n${await w.logTail(25)}`));
    throw new Error(`${(err as Error).message}\n${tails.join('\n')}`, { cause: err });
  }
}

async function registerWebhook(config: Obj) {
  await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(config) });
}

// Missing prerequisites fail the run with the fix, never skip it: CI installs kube-apiserver
// first (.ci/run), and a developer running test:e2e asked for exactly this suite. One failing
// test says why, instead of every scenario reporting "cancelled".
const missing = await missingPrerequisites();
if (missing.length > 0) {
  test('prerequisites of the e2e suite', () => {
    throw new Error(missing.join('\n'));
  });
}

describe(`realip-webhook behind a real kube-apiserver ${release.version} (shipped MutatingWebhookConfiguration, kubectl as the client)`, { skip: missing.length > 0 && 'prerequisites missing (see above)' }, () => {
  before(() => withLogs(async () => {
    cluster = await startCluster();
    workDir = await mkdtemp(join(tmpdir(), 'realip-e2e-webhook-'));
    certs = generateCertsForRegistration(join(workDir, 'certs'));
    webhook = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir: workDir, name: 'serve' });
    started.push(webhook);
    shipped = await shippedWebhookConfiguration();
    await registerWebhook(adaptWebhookConfiguration(shipped, webhook.url, certs.caBundle));
    await createNamespace('e2e-probe', ENABLED);
    await waitUntilMutating('e2e-probe');
  }), { timeout: 120_000 });

  after(async () => {
    await Promise.all(started.map((w) => w.stop()));
    await cluster?.stop();
    // REALIP_E2E_KEEP=1 keeps the webhook logs and certificates for a look afterwards.
    if (process.env.REALIP_E2E_KEEP) console.log(`# webhook logs kept in ${workDir}`);
    else if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  scenario('registered as shipped: only clientConfig differs from manifests/base (url to the webhook, test CA as caBundle)', async () => {
    const stored = await getJson(cluster, ['mutatingwebhookconfiguration', shipped.metadata.name]);
    assert.equal(stored.webhooks.length, shipped.webhooks.length);
    for (const [i, want] of (shipped.webhooks as Obj[]).entries()) {
      const live = stored.webhooks[i];
      assert.deepEqual(live.clientConfig, { url: webhook.url, caBundle: certs.caBundle });
      const fields = ['name', 'rules', 'matchConditions', 'namespaceSelector', 'matchPolicy', 'sideEffects', 'admissionReviewVersions', 'timeoutSeconds', 'reinvocationPolicy', 'failurePolicy'];
      for (const field of fields) assert.deepEqual(live[field], want[field], `webhooks[${i}].${field} as shipped`);
    }
  });

  // --- The seeds' walkthrough ------------------------------------------------------------------

  scenario('walkthrough: kubectl create deployment source-ip-app gets preferred anti-affinity on its selector and TPROXY, with warnings', async () => {
    const ns = 'e2e-walkthrough';
    await createNamespace(ns, ENABLED);
    const { stderr } = await cluster.kubectl(['create', 'deployment', 'source-ip-app', `--image=${IMAGE}`, '-n', ns]);
    const d = await get('deployment', 'source-ip-app', ns);
    assert.deepEqual(d.spec.selector, { matchLabels: { app: 'source-ip-app' } });
    assertSpread(d, 'preferred');
    assert.equal(interception(d), 'TPROXY');
    assert.equal(d.metadata.generation, 1);
    // The change warnings reach the kubectl user.
    assert.match(stderr, /^Warning: realip-webhook: added preferred pod anti-affinity on kubernetes\.io\/hostname/m);
    assert.match(stderr, /^Warning: realip-webhook: set sidecar\.istio\.io\/interceptionMode=TPROXY/m);
  });

  scenario('walkthrough: kubectl expose --type=NodePort gets externalTrafficPolicy Local', async () => {
    const ns = 'e2e-walkthrough';
    const { stderr } = await cluster.kubectl(['expose', 'deployment', 'source-ip-app', '--port=8080', '--type=NodePort', '--name=source-ip-nodeport', '-n', ns]);
    const svc = await get('service', 'source-ip-nodeport', ns);
    assert.equal(svc.spec.type, 'NodePort');
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    assert.ok(svc.spec.ports[0].nodePort >= 30000, 'nodePort allocated');
    assert.equal(svc.spec.healthCheckNodePort, undefined, 'healthCheckNodePort is for LoadBalancers only');
    assert.match(stderr, /^Warning: realip-webhook: set spec\.externalTrafficPolicy=Local/m);
  });

  scenario('walkthrough: kubectl expose --type=LoadBalancer gets Local and the API server allocates healthCheckNodePort', async () => {
    const ns = 'e2e-walkthrough';
    await cluster.kubectl(['expose', 'deployment', 'source-ip-app', '--port=8080', '--type=LoadBalancer', '--name=source-ip-lb', '-n', ns]);
    const svc = await get('service', 'source-ip-lb', ns);
    assert.equal(svc.spec.type, 'LoadBalancer');
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    const hc = svc.spec.healthCheckNodePort;
    assert.ok(Number.isInteger(hc) && hc >= 30000 && hc <= 32767, `healthCheckNodePort allocated by the API server: ${hc}`);
    assert.notEqual(hc, svc.spec.ports[0].nodePort);
  });

  scenario('walkthrough: kubectl expose as ClusterIP is left untouched (no externalTrafficPolicy, no warning)', async () => {
    const ns = 'e2e-walkthrough';
    const { stderr } = await cluster.kubectl(['expose', 'deployment', 'source-ip-app', '--port=8080', '--name=source-ip-clusterip', '-n', ns]);
    const svc = await get('service', 'source-ip-clusterip', ns);
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.equal(svc.spec.externalTrafficPolicy, undefined);
    assert.deepEqual(realipWarnings(stderr), []);
  });

  // --- Every workload kind -----------------------------------------------------------------------

  scenario(`every workload kind: Deployment, StatefulSet, ReplicaSet get anti-affinity + TPROXY; DaemonSet, Job, CronJob (${CRONJOB_VERSION}) TPROXY only`, async () => {
    const ns = 'e2e-kinds';
    await createNamespace(ns, ENABLED);
    await create(
      workload('Deployment', 'deploy', ns),
      workload('StatefulSet', 'sts', ns),
      workload('ReplicaSet', 'rs', ns),
      workload('DaemonSet', 'ds', ns),
      job('job', ns),
      cronJob('cron', ns),
    );
    for (const [kind, name] of [['deployment', 'deploy'], ['statefulset', 'sts'], ['replicaset', 'rs']] as const) {
      const o = await get(kind, name, ns);
      assertSpread(o, 'preferred');
      assert.equal(interception(o), 'TPROXY', `${kind} TPROXY`);
    }
    for (const [kind, name] of [['daemonset', 'ds'], ['job', 'job'], ['cronjob', 'cron']] as const) {
      const o = await get(kind, name, ns);
      assert.equal(interception(o), 'TPROXY', `${kind} TPROXY`);
      assert.equal(podAntiAffinity(o), undefined, `${kind}: no anti-affinity`);
    }
    assert.equal((await get('cronjob', 'cron', ns)).apiVersion, CRONJOB_VERSION);
  });

  scenario('every workload kind: a bare Pod and a generateName Pod get TPROXY (request.namespace, not metadata.namespace)', async () => {
    const ns = 'e2e-kinds';
    await create(pod('bare', ns));
    assert.equal(interception(await get('pod', 'bare', ns)), 'TPROXY');
    // No metadata.namespace at all: only the request (-n) carries it.
    const generated = pod('gen', ns, { generateName: true });
    delete generated.metadata.namespace;
    const { stdout } = await cluster.kubectl(['create', '-n', ns, '-o', 'name', '-f', '-'], { stdin: JSON.stringify(generated) });
    const name = stdout.trim().replace(/^pod\//, '');
    assert.match(name, /^gen-[a-z0-9]{5}$/);
    const p = await get('pod', name, ns);
    assert.equal(interception(p), 'TPROXY');
    assert.equal(p.spec.affinity, undefined, 'Pods get no anti-affinity');
  });

  // --- Namespace settings ------------------------------------------------------------------------

  scenario('namespace not opted in (no realip.io/inject label): Deployment and NodePort Service untouched, no warnings', async () => {
    const ns = 'e2e-not-opted-in';
    await createNamespace(ns);
    const { stderr } = await create(deployment('web', ns), service('web', ns, 'NodePort'), pod('bare', ns));
    assertUntouchedWorkload(await get('deployment', 'web', ns));
    assertUntouchedWorkload(await get('pod', 'bare', ns));
    assert.equal((await get('service', 'web', ns)).spec.externalTrafficPolicy, 'Cluster');
    assert.deepEqual(realipWarnings(stderr), []);
  });

  // Each namespace label value, on a Deployment and a NodePort Service created in a fresh namespace.
  const settingCases: { labels: Record<string, string>; expect: string; check(d: Obj, svc: Obj): void }[] = [
    {
      labels: { 'realip.io/inject': 'disabled' },
      expect: 'untouched (namespaceSelector does not match)',
      check(d, svc) {
        assertUntouchedWorkload(d);
        assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
      },
    },
    {
      labels: { 'realip.io/external-traffic-policy': 'Local' },
      expect: 'Service Local',
      check: (_d, svc) => assert.equal(svc.spec.externalTrafficPolicy, 'Local'),
    },
    {
      labels: { 'realip.io/external-traffic-policy': 'Cluster' },
      expect: 'Service keeps Cluster, workload still mutated',
      check(d, svc) {
        assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
        assert.equal(interception(d), 'TPROXY');
      },
    },
    {
      labels: { 'realip.io/anti-affinity': 'preferred' },
      expect: 'preferred anti-affinity on hostname',
      check: (d) => assertSpread(d, 'preferred'),
    },
    {
      labels: { 'realip.io/anti-affinity': 'required' },
      expect: 'required anti-affinity on hostname',
      check: (d) => assertSpread(d, 'required'),
    },
    {
      labels: { 'realip.io/anti-affinity': 'none' },
      expect: 'no anti-affinity, TPROXY still set',
      check(d) {
        assert.equal(templateOf(d).spec.affinity, undefined);
        assert.equal(interception(d), 'TPROXY');
      },
    },
    {
      labels: { 'realip.io/anti-affinity-topology': 'hostname' },
      expect: 'term on kubernetes.io/hostname',
      check: (d) => assertSpread(d, 'preferred', HOSTNAME),
    },
    {
      labels: { 'realip.io/anti-affinity-topology': 'zone' },
      expect: 'term on topology.kubernetes.io/zone',
      check: (d) => assertSpread(d, 'preferred', ZONE),
    },
    {
      labels: { 'realip.io/anti-affinity': 'required', 'realip.io/anti-affinity-topology': 'zone' },
      expect: 'required term on topology.kubernetes.io/zone',
      check: (d) => assertSpread(d, 'required', ZONE),
    },
    {
      labels: { 'realip.io/istio-interception': 'TPROXY' },
      expect: 'TPROXY annotation on the pod template',
      check: (d) => assert.equal(interception(d), 'TPROXY'),
    },
    {
      labels: { 'realip.io/istio-interception': 'none' },
      expect: 'no interceptionMode annotation, anti-affinity still added',
      check(d, svc) {
        assert.equal(interception(d), undefined);
        assertSpread(d, 'preferred');
        assert.equal(svc.spec.externalTrafficPolicy, 'Local');
      },
    },
  ];
  settingCases.forEach(({ labels, expect, check }, i) => {
    const shown = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    scenario(`namespace label ${shown}: ${expect}`, async () => {
      const ns = `e2e-setting-${i}`;
      await createNamespace(ns, { ...ENABLED, ...labels });
      await create(deployment('web', ns), service('web', ns, 'NodePort'));
      check(await get('deployment', 'web', ns), await get('service', 'web', ns));
    });
  });

  scenario('namespace label realip.io/anti-affinity=sometimes (invalid): no anti-affinity, TPROXY kept, warning naming the label in kubectl stderr', async () => {
    const ns = 'e2e-invalid-label';
    await createNamespace(ns, { ...ENABLED, 'realip.io/anti-affinity': 'sometimes' });
    const { stderr } = await create(deployment('web', ns));
    const d = await get('deployment', 'web', ns);
    assert.equal(templateOf(d).spec.affinity, undefined, 'an invalid value is never guessed at');
    assert.equal(interception(d), 'TPROXY', 'the other features still apply');
    assert.match(
      stderr,
      /^Warning: realip-webhook: namespace label realip\.io\/anti-affinity="sometimes" is invalid \(allowed: preferred, required, none\)/m,
    );
  });

  scenario('namespace with pod-security.kubernetes.io/enforce=restricted: no TPROXY (needs NET_ADMIN), warning in kubectl stderr, anti-affinity kept', async () => {
    // From 1.25 the PodSecurity admission plugin enforces the label, so the bare Pod is written
    // to pass restricted; 1.20 has no such plugin and only the label matters.
    const ns = 'e2e-psa-restricted';
    await createNamespace(ns, { ...ENABLED, 'pod-security.kubernetes.io/enforce': 'restricted' });
    const { stderr } = await create(deployment('web', ns), restricted(pod('bare', ns)));
    const d = await get('deployment', 'web', ns);
    assert.equal(interception(d), undefined);
    assertSpread(d, 'preferred');
    assert.equal(interception(await get('pod', 'bare', ns)), undefined);
    assert.match(stderr, /^Warning: realip-webhook: TPROXY not set: namespace enforces pod-security restricted/m);
  });

  scenario('namespace with pod-security.kubernetes.io/enforce=privileged: TPROXY set', async () => {
    const ns = 'e2e-psa-privileged';
    await createNamespace(ns, { ...ENABLED, 'pod-security.kubernetes.io/enforce': 'privileged' });
    const { stderr } = await create(deployment('web', ns));
    assert.equal(interception(await get('deployment', 'web', ns)), 'TPROXY');
    assert.doesNotMatch(stderr, /TPROXY not set/);
  });

  // --- Per-object overrides ------------------------------------------------------------------------

  scenario('override: realip.io/inject=disabled on the object or on its pod template skips it; on a Service keeps Cluster', async () => {
    const ns = 'e2e-overrides';
    await createNamespace(ns, ENABLED);
    const { stderr } = await create(
      deployment('object-opt-out', ns, { objectAnnotations: { 'realip.io/inject': 'disabled' } }),
      deployment('template-opt-out', ns, { annotations: { 'realip.io/inject': 'disabled' } }),
      service('opt-out', ns, 'NodePort', { 'realip.io/inject': 'disabled' }),
    );
    assertUntouchedWorkload(await get('deployment', 'object-opt-out', ns));
    assertUntouchedWorkload(await get('deployment', 'template-opt-out', ns));
    assert.equal((await get('service', 'opt-out', ns)).spec.externalTrafficPolicy, 'Cluster');
    assert.deepEqual(realipWarnings(stderr), []);
  });

  scenario('override: an explicit sidecar.istio.io/interceptionMode=REDIRECT is kept, anti-affinity still added', async () => {
    const ns = 'e2e-overrides';
    await create(deployment('redirect', ns, { annotations: { [TPROXY_KEY]: 'REDIRECT' } }));
    const d = await get('deployment', 'redirect', ns);
    assert.equal(interception(d), 'REDIRECT');
    assertSpread(d, 'preferred');
  });

  scenario('override: existing nodeAffinity and a podAntiAffinity term on another topologyKey are merged into, not replaced', async () => {
    const ns = 'e2e-overrides';
    const nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }],
      },
    };
    const zoneTerm = { weight: 50, podAffinityTerm: { labelSelector: { matchLabels: { app: 'merged' } }, topologyKey: ZONE } };
    const sameKeyTerm = { labelSelector: { matchLabels: { tier: 'web' } }, topologyKey: HOSTNAME };
    await create(
      deployment('merged', ns, { affinity: { nodeAffinity, podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [zoneTerm] } } }),
      deployment('same-key', ns, { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [sameKeyTerm] } } }),
    );
    const merged = templateOf(await get('deployment', 'merged', ns)).spec.affinity;
    assert.deepEqual(merged.nodeAffinity, nodeAffinity);
    assert.deepEqual(merged.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution, [
      zoneTerm,
      { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'merged' } }, topologyKey: HOSTNAME } },
    ]);
    // A term the user wrote for the same topologyKey wins: nothing is added beside it.
    const sameKey = await get('deployment', 'same-key', ns);
    assert.deepEqual(templateOf(sameKey).spec.affinity, { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [sameKeyTerm] } });
    assert.equal(interception(sameKey), 'TPROXY');
  });

  scenario('override: Service annotation realip.io/external-traffic-policy=Cluster keeps Cluster; workload annotation anti-affinity=required beats the namespace', async () => {
    const ns = 'e2e-overrides';
    await create(
      service('keep-cluster', ns, 'LoadBalancer', { 'realip.io/external-traffic-policy': 'Cluster' }),
      deployment('required', ns, { objectAnnotations: { 'realip.io/anti-affinity': 'required' } }),
    );
    const svc = await get('service', 'keep-cluster', ns);
    assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
    assert.equal(svc.spec.healthCheckNodePort, undefined);
    assertSpread(await get('deployment', 'required', ns), 'required');
  });

  // --- Idempotence and updates ---------------------------------------------------------------------

  scenario('idempotence: kubectl apply of the same Deployment manifest twice leaves metadata.generation at 1', async () => {
    const ns = 'e2e-idempotence';
    await createNamespace(ns, ENABLED);
    const manifest = JSON.stringify(deployment('applied', ns));
    await cluster.kubectl(['apply', '-f', '-'], { stdin: manifest });
    const first = await get('deployment', 'applied', ns);
    assert.equal(first.metadata.generation, 1);
    assert.equal(interception(first), 'TPROXY');
    const { stdout } = await cluster.kubectl(['apply', '-f', '-'], { stdin: manifest });
    assert.match(stdout, /deployment\.apps\/applied unchanged/);
    const second = await get('deployment', 'applied', ns);
    assert.equal(second.metadata.generation, 1);
    assert.deepEqual(second.spec.template, first.spec.template);
  });

  scenario('idempotence: kubectl apply --server-side of the same manifest twice leaves metadata.generation at 1 and the mutations in place', async () => {
    const ns = 'e2e-idempotence';
    const manifest = JSON.stringify(deployment('server-side', ns));
    await cluster.kubectl(['apply', '--server-side', '-f', '-'], { stdin: manifest });
    const first = await get('deployment', 'server-side', ns);
    assert.equal(first.metadata.generation, 1);
    assertSpread(first, 'preferred');
    assert.equal(interception(first), 'TPROXY');
    // Unlike client-side apply, this always sends the request: the webhook sees an UPDATE.
    await cluster.kubectl(['apply', '--server-side', '-f', '-'], { stdin: manifest });
    const second = await get('deployment', 'server-side', ns);
    assert.equal(second.metadata.generation, 1);
    assert.deepEqual(second.spec.template, first.spec.template);
  });

  scenario('no surprise rollout: labelling a namespace, then kubectl scale and kubectl label leave the template alone; kubectl set image mutates it once', async () => {
    const ns = 'e2e-rollout';
    await createNamespace(ns);
    await cluster.kubectl(['create', 'deployment', 'web', `--image=${IMAGE}`, '-n', ns]);
    const before = await get('deployment', 'web', ns);
    assertUntouchedWorkload(before);
    assert.equal(before.metadata.generation, 1);

    await cluster.kubectl(['label', 'namespace', ns, 'realip.io/inject=enabled']);
    await waitUntilMutating(ns);

    // /scale subresource: spec.replicas changes (the API server bumps generation for that), the template must not.
    await cluster.kubectl(['scale', 'deployment', 'web', '--replicas=3', '-n', ns]);
    const scaled = await get('deployment', 'web', ns);
    assert.equal(scaled.spec.replicas, 3);
    assert.deepEqual(scaled.spec.template, before.spec.template, 'scale must not mutate the pod template');
    assert.equal(scaled.metadata.generation, before.metadata.generation + 1, 'only the replicas change bumps generation');

    // An UPDATE of the main resource that the webhook sees, with an unchanged template.
    const { stderr } = await cluster.kubectl(['label', 'deployment', 'web', 'team=payments', '-n', ns]);
    const labelled = await get('deployment', 'web', ns);
    assert.equal(labelled.metadata.labels.team, 'payments');
    assert.deepEqual(labelled.spec.template, before.spec.template, 'an unrelated update must not mutate the pod template');
    assert.equal(labelled.metadata.generation, scaled.metadata.generation, 'an unrelated update must not bump generation');
    assert.deepEqual(realipWarnings(stderr), []);
    // Before 1.30 the webhook sees that UPDATE (the namespace is opted in by now) and leaves it;
    // from 1.30 the shipped matchConditions keep it in the API server. Scale goes through /scale,
    // which the rules leave out.
    const updates = (await admissionLog(webhook)).filter((l) => l.namespace === ns && l.name === 'web' && l.operation === 'UPDATE');
    assert.deepEqual(updates.map((l) => l.outcome), atLeast('1.30') ? [] : ['unchanged'], 'UPDATEs of web that reached the webhook');

    // A template change is the rollout the user asked for: it is mutated, in the same generation.
    await cluster.kubectl(['set', 'image', 'deployment/web', 'echoserver=registry.k8s.io/echoserver:1.10', '-n', ns]);
    const updated = await get('deployment', 'web', ns);
    assert.equal(updated.spec.template.spec.containers[0].image, 'registry.k8s.io/echoserver:1.10');
    assert.equal(interception(updated), 'TPROXY');
    assertSpread(updated, 'preferred');
    assert.equal(updated.metadata.generation, labelled.metadata.generation + 1, 'one generation for the one template change');
  });

  scenario('one-shot apply: a new labelled Namespace, its Deployment and NodePort Service in one kubectl apply -f - are mutated', async () => {
    const ns = 'e2e-one-shot';
    await cluster.kubectl(['apply', '-f', '-'], {
      stdin: manifestStream(namespace(ns, ENABLED), deployment('web', ns), service('web', ns, 'NodePort')),
    });
    const d = await get('deployment', 'web', ns);
    assertSpread(d, 'preferred');
    assert.equal(interception(d), 'TPROXY');
    assert.equal((await get('service', 'web', ns)).spec.externalTrafficPolicy, 'Local');
  });

  // --- admission.k8s.io/v1beta1 --------------------------------------------------------------------

  scenario('v1beta1: a second configuration with admissionReviewVersions [v1beta1] (its own webhook, --label-prefix e2e-v1beta1.realip.io) mutates', async () => {
    // The webhook reads the opt-in label from the namespace too, so a namespace that both
    // configurations select would be mutated by the v1 one first. A second webhook with its own
    // label prefix (the README's recipe: change the namespaceSelector key with --label-prefix)
    // gets a namespace that only the v1beta1 configuration selects.
    const prefix = 'e2e-v1beta1.realip.io';
    const second = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir: workDir, name: 'serve-v1beta1', extraArgs: ['--label-prefix', prefix] });
    started.push(second);
    const config = adaptWebhookConfiguration(shipped, second.url, certs.caBundle);
    config.metadata.name = `${shipped.metadata.name}-v1beta1`;
    for (const w of config.webhooks as Obj[]) {
      w.admissionReviewVersions = ['v1beta1'];
      for (const expr of w.namespaceSelector.matchExpressions as Obj[]) expr.key = expr.key.replace(/^realip\.io\//, `${prefix}/`);
    }
    try {
      await registerWebhook(config);
      const ns = 'e2e-v1beta1';
      await createNamespace(ns, { [`${prefix}/inject`]: 'enabled' });
      await waitUntilMutating(ns);
      const { stderr } = await create(deployment('web', ns), service('web', ns, 'LoadBalancer'));
      const d = await get('deployment', 'web', ns);
      assertSpread(d, 'preferred');
      assert.equal(interception(d), 'TPROXY');
      const svc = await get('service', 'web', ns);
      assert.equal(svc.spec.externalTrafficPolicy, 'Local');
      assert.ok(svc.spec.healthCheckNodePort > 0);
      assert.match(stderr, /^Warning: realip-webhook: set spec\.externalTrafficPolicy=Local/m);
      // It was the v1beta1 webhook that answered: its log has the admissions.
      const answered = (await admissionLog(second)).filter((l) => l.namespace === ns && l.name === 'web' && l.operation === 'CREATE');
      assert.deepEqual(answered.map((l) => [l.kind, l.outcome]).sort(), [['Deployment', 'patched'], ['Service', 'patched']]);
    } finally {
      await cluster.kubectl(['delete', 'mutatingwebhookconfiguration', config.metadata.name, '--ignore-not-found']);
      await second.stop();
    }
  });

  // --- Webhook down (failurePolicy Ignore, as shipped) --------------------------------------------

  scenario('webhook down: with the shipped failurePolicy Ignore, objects in an opted-in namespace are admitted unmutated', async () => {
    const ns = 'e2e-webhook-down';
    await createNamespace(ns, ENABLED);
    await waitUntilMutating(ns);
    await webhook.stop();
    assert.equal(webhook.exitCode(), 0, 'SIGTERM: drain, finish in-flight requests, exit 0');
    const { stderr } = await create(deployment('web', ns), service('web', ns, 'NodePort'));
    assertUntouchedWorkload(await get('deployment', 'web', ns));
    assert.equal((await get('service', 'web', ns)).spec.externalTrafficPolicy, 'Cluster');
    assert.deepEqual(realipWarnings(stderr), []);
  });

  // --- Node-aware warnings (serve --watch-nodes) ---------------------------------------------------

  describe('node-aware warnings: webhook restarted with --watch-nodes, two Ready Nodes in two zones', () => {
    before(() => withLogs(async () => {
      await create(readyNode('e2e-node-a', 'zone-a'), readyNode('e2e-node-b', 'zone-b'));
      // Same port: the registered configuration keeps pointing at it.
      webhook = await startWebhook({
        kubeconfig: cluster.kubeconfig,
        certs,
        dir: workDir,
        name: 'serve-watch-nodes',
        port: webhook.port,
        extraArgs: ['--watch-nodes'],
      });
      started.push(webhook);
      await createNamespace('e2e-nodes-required', { ...ENABLED, 'realip.io/anti-affinity': 'required' });
      await createNamespace('e2e-nodes-none', { ...ENABLED, 'realip.io/anti-affinity': 'none' });
      // The node list arrives after /readyz: wait until the warnings know about both nodes.
      await pollUntil('the node watch to count 2 schedulable nodes', async () => {
        const { stderr } = await dryRun(deployment('probe', 'e2e-nodes-required', { replicas: 3 }));
        return /> 2 schedulable nodes/.test(stderr) ? true : undefined;
      });
    }), { timeout: 60_000 });

    scenario('required anti-affinity with replicas 3 on 2 nodes: kubectl warns that a pod will stay Pending', async () => {
      const ns = 'e2e-nodes-required';
      const { stderr } = await create(deployment('three', ns, { replicas: 3 }));
      assert.match(
        stderr,
        /^Warning: realip-webhook: required anti-affinity on kubernetes\.io\/hostname fits 1 pod per node, but replicas=3 > 2 schedulable nodes: 1 pod\(s\) will stay Pending/m,
      );
      assertSpread(await get('deployment', 'three', ns), 'required');
    });

    scenario('required anti-affinity with replicas 2 on 2 nodes and the default maxSurge 25%: kubectl warns the rollout deadlocks, suggests maxSurge 0', async () => {
      const ns = 'e2e-nodes-required';
      const { stderr } = await create(deployment('two', ns, { replicas: 2 }));
      assert.match(
        stderr,
        /^Warning: realip-webhook: required anti-affinity on kubernetes\.io\/hostname with replicas=2 on 2 schedulable nodes and maxSurge=25%: a rollout will deadlock; set maxSurge: 0 and maxUnavailable: 1/m,
      );
      assert.doesNotMatch(stderr, /will stay Pending/);
      const d = await get('deployment', 'two', ns);
      assert.equal(d.spec.strategy.rollingUpdate.maxSurge, '25%', 'the default the warning is about');
      assertSpread(d, 'required');
    });

    scenario('required anti-affinity with replicas 2 and the suggested maxSurge 0 / maxUnavailable 1: no node warning', async () => {
      const ns = 'e2e-nodes-required';
      const strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } };
      const { stderr } = await create(deployment('two-safe', ns, { replicas: 2, strategy }));
      assert.doesNotMatch(stderr, /deadlock|Pending/);
      assert.match(stderr, /^Warning: realip-webhook: added required pod anti-affinity/m);
    });

    scenario('required anti-affinity, kubectl patch of spec.replicas to 4 (template unchanged): kubectl warns that 2 pods will stay Pending', async () => {
      const ns = 'e2e-nodes-required';
      // An UPDATE of the main resource that leaves the template alone still re-checks replicas.
      const { stderr } = await cluster.kubectl(['patch', 'deployment', 'two-safe', '-n', ns, '--type=merge', '-p', '{"spec":{"replicas":4}}']);
      assert.match(stderr, /replicas=4 > 2 schedulable nodes: 2 pod\(s\) will stay Pending/);
      assert.equal((await get('deployment', 'two-safe', ns)).spec.replicas, 4);
    });

    scenario('anti-affinity=none with a NodePort Service: Local is set and kubectl warns that nodes with no local pod drop the traffic', async () => {
      const ns = 'e2e-nodes-none';
      const { stderr } = await create(service('web', ns, 'NodePort'));
      assert.equal((await get('service', 'web', ns)).spec.externalTrafficPolicy, 'Local');
      assert.match(
        stderr,
        /^Warning: realip-webhook: externalTrafficPolicy=Local but namespace label realip\.io\/anti-affinity=none: replicas may share nodes, and nodes with no local pod drop this Service's traffic/m,
      );
    });
  });

  scenario('the webhook processes logged no errors', async () => {
    for (const w of started) {
      const errors = (await readFile(w.logFile, 'utf8'))
        .split('\n')
        .filter((line) => /"level":(50|60)/.test(line));
      assert.deepEqual(errors, [], `${w.name} logged errors`);
    }
  });
});
