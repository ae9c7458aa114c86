// The chart against the real API server of the e2e suite (kube-apiserver 1.20 or 1.37 + etcd on
// loopback): helm install in tls.mode=helm, upgrade, uninstall, and the installed webhook
// configuration serving admission through the built webhook, run outside the cluster (there is no
// kubelet) with the certificate and key from the Secret the chart made.
//   npm run test:helm (builds first; needs test/kubernetes/install-$KUBE_VERSION.sh)
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateCerts } from '../support/certs.js';
import { startCluster, type Cluster } from '../e2e/cluster.js';
import { adaptWebhookConfiguration, getJson, missingPrerequisites, pollUntil, startWebhook, type Obj, type Webhook } from '../e2e/webhook-harness.js';
import { atLeast, release } from '../kubernetes/release.js';
import { CHART_DIR, NAMESPACE, RELEASE, parseObjects, runHelm, servingCertsFromSecret, valuesFile, type Run } from './helm.js';

const WEBHOOK_CONFIG = `00-${RELEASE}`;
const SERVICE_DNS = `${RELEASE}.${NAMESPACE}.svc`;
const STEP_TIMEOUT_MS = 120_000;
// The webhook runs outside the cluster and the API server dials it on loopback, so the generated
// serving certificate also names 127.0.0.1 (tls.helm.extraIpAddresses); the Service names stay.
const VALUES = { tls: { mode: 'helm', helm: { extraIpAddresses: ['127.0.0.1'] } } };
// The release's objects: policy/v1beta1 for the PDB on 1.20 (policy/v1 is 1.21+), and an HPA
// of autoscaling/v2beta2 there (autoscaling/v2 is 1.23+) when autoscaling is on.
const HPA_VERSION = atLeast('1.23') ? 'v2' : 'v2beta2';
const EXPECTED_OBJECTS = [
  'admissionregistration.k8s.io/v1 MutatingWebhookConfiguration',
  'apps/v1 Deployment',
  `policy/${atLeast('1.21') ? 'v1' : 'v1beta1'} PodDisruptionBudget`,
  'rbac.authorization.k8s.io/v1 ClusterRole',
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
  'scheduling.k8s.io/v1 PriorityClass',
  'v1 Secret',
  'v1 Service',
  'v1 ServiceAccount',
];
// The flags startWebhook sets for a loopback run; every other flag comes from the installed Deployment.
const LOOPBACK_FLAGS = ['--host', '--port', '--metrics-port', '--tls-cert', '--tls-key'];

let cluster: Cluster;
let workDir: string;
let webhook: Webhook | undefined;
/** What the release made, recorded before uninstall for the last test. */
let installedConfig: Obj;
let installedSecret: Obj;
let installedArgs: string[];

function helm(args: string[], opts: { allowFail?: boolean } = {}): Run {
  const r = runHelm([...args, '--kubeconfig', cluster.kubeconfig]);
  if (r.code !== 0 && !opts.allowFail) throw new Error(`helm ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.trim()}`);
  return r;
}

/** The release's manifest, as helm stored it. */
function releaseManifest(): string {
  return helm(['get', 'manifest', RELEASE, '--namespace', NAMESPACE]).stdout;
}

/** The live objects of a manifest (`kubectl get -f`), missing ones left out. */
async function liveObjects(manifest: string): Promise<Obj[]> {
  const { stdout } = await cluster.kubectl(['get', '--ignore-not-found', '-o', 'json', '-f', '-'], { stdin: manifest });
  if (!stdout.trim()) return [];
  const parsed = JSON.parse(stdout) as Obj;
  return parsed.kind === 'List' ? parsed.items : [parsed];
}

const kindOf = (o: Obj) => `${o.apiVersion} ${o.kind}`;
const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

const missing = await missingPrerequisites();
if (missing.length > 0) {
  test('prerequisites of the helm install test', () => {
    throw new Error(missing.join('\n'));
  });
}

describe(`the chart against a real kube-apiserver ${release.version} (helm install, upgrade, uninstall)`, { skip: missing.length > 0 && 'prerequisites missing (see above)' }, () => {
  before(async () => {
    cluster = await startCluster();
    workDir = await mkdtemp(join(tmpdir(), 'realip-helm-install-'));
  }, { timeout: STEP_TIMEOUT_MS });

  after(async () => {
    await webhook?.stop();
    await cluster?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('helm install creates every object of the release, the cluster-scoped ones included', { timeout: STEP_TIMEOUT_MS }, async () => {
    const r = helm(['install', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--create-namespace', '--values', valuesFile(VALUES)]);
    assert.match(r.stdout, /STATUS: deployed/);
    assert.match(r.stdout, /kubectl label namespace NAME realip\.io\/inject=enabled/, 'NOTES say what to label next');

    const manifest = releaseManifest();
    const declared = parseObjects(manifest, 'helm get manifest');
    assert.deepEqual(declared.map((o) => kindOf(o as Obj)).sort(), EXPECTED_OBJECTS);
    const live = await liveObjects(manifest);
    assert.deepEqual(live.map(kindOf).sort(), EXPECTED_OBJECTS, 'every declared object exists in the API server');

    installedConfig = await getJson(cluster, ['mutatingwebhookconfiguration', WEBHOOK_CONFIG]);
    installedSecret = await getJson(cluster, ['secret', `${RELEASE}-tls`, '-n', NAMESPACE]);
    const deployment = await getJson(cluster, ['deployment', RELEASE, '-n', NAMESPACE]);
    installedArgs = deployment.spec.template.spec.containers[0].args;
    assert.equal(deployment.spec.template.spec.volumes[0].secret.secretName, installedSecret.metadata.name);
  });

  test("the installed caBundle verifies the serving certificate in the Secret, for the Service's name", () => {
    const webhookEntry = installedConfig.webhooks[0];
    for (const entry of installedConfig.webhooks) {
      assert.deepEqual(entry.clientConfig, webhookEntry.clientConfig, `${entry.name}: the same clientConfig in every entry`);
      assert.equal(entry.failurePolicy, 'Ignore');
    }
    // matchConditions: auto, decided from the API server's version that helm read.
    const conditions = (installedConfig.webhooks as Obj[]).map((w) => (w.matchConditions ?? []).length > 0);
    assert.deepEqual(conditions, atLeast('1.30') ? [true, true, true, false] : [false, false, false, false]);
    assert.deepEqual(webhookEntry.clientConfig.service, { name: RELEASE, namespace: NAMESPACE, path: '/mutate', port: 443 });
    assert.equal(installedSecret.type, 'kubernetes.io/tls');
    assert.deepEqual(Object.keys(installedSecret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key'], 'no CA private key stored');
    const ca = new X509Certificate(pem(webhookEntry.clientConfig.caBundle));
    const leaf = new X509Certificate(pem(installedSecret.data['tls.crt']));
    assert.ok(leaf.verify(ca.publicKey), 'tls.crt is signed by the caBundle CA');
    assert.equal(leaf.checkHost(SERVICE_DNS), SERVICE_DNS);
    assert.equal(webhookEntry.clientConfig.caBundle, installedSecret.data['ca.crt']);
  });

  test('helm upgrade keeps the same CA and serving pair while applying the new values', { timeout: STEP_TIMEOUT_MS }, async () => {
    // Also the optional objects: an HPA of the newest version the cluster serves, and no
    // ServiceMonitor without its API, with a warning instead.
    const values = { ...VALUES, logLevel: 'debug', autoscaling: { enabled: true }, serviceMonitor: { enabled: true } };
    const r = helm(['upgrade', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--values', valuesFile(values)]);
    assert.match(r.stdout, /REVISION: 2/);
    assert.match(r.stdout, /serviceMonitor.enabled is true but the cluster does not serve monitoring.coreos.com\/v1/);
    const declared = parseObjects(releaseManifest(), 'helm get manifest').map((o) => kindOf(o as Obj));
    assert.deepEqual(declared.sort(), [...EXPECTED_OBJECTS, `autoscaling/${HPA_VERSION} HorizontalPodAutoscaler`].sort());
    const hpa = await getJson(cluster, [`horizontalpodautoscalers.${HPA_VERSION}.autoscaling`, RELEASE, '-n', NAMESPACE]);
    assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [2, 5]);

    const config = await getJson(cluster, ['mutatingwebhookconfiguration', WEBHOOK_CONFIG]);
    const secret = await getJson(cluster, ['secret', `${RELEASE}-tls`, '-n', NAMESPACE]);
    const deployment = await getJson(cluster, ['deployment', RELEASE, '-n', NAMESPACE]);
    assert.ok(deployment.spec.template.spec.containers[0].args.includes('--log-level=debug'), 'the upgrade was applied');
    assert.equal(config.webhooks[0].clientConfig.caBundle, installedConfig.webhooks[0].clientConfig.caBundle, 'same caBundle');
    assert.deepEqual(secret.data, installedSecret.data, 'same CA, certificate and key');
    installedArgs = deployment.spec.template.spec.containers[0].args;
  });

  test('helm refuses to upgrade into a release namespace that is opted in', { timeout: STEP_TIMEOUT_MS }, async () => {
    await cluster.kubectl(['label', 'namespace', NAMESPACE, 'realip.io/inject=enabled']);
    try {
      const r = helm(['upgrade', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--values', valuesFile(VALUES)], { allowFail: true });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /namespace realip-system is labelled realip\.io\/inject=enabled: the webhook must never sit in the admission path of its own pods/);
    } finally {
      await cluster.kubectl(['label', 'namespace', NAMESPACE, 'realip.io/inject-']);
    }
    assert.match(helm(['status', RELEASE, '--namespace', NAMESPACE]).stdout, /REVISION: 2/, 'the refused upgrade changed nothing');
  });

  test('helm uninstall removes every object, the cluster-scoped ones included', { timeout: STEP_TIMEOUT_MS }, async () => {
    const manifest = releaseManifest();
    const r = helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait']);
    assert.match(r.stdout, /release "realip-webhook" uninstalled/);
    // Deletion is asynchronous for objects with finalizers (none here, but the Deployment's
    // garbage collection would be): poll until every declared object is gone.
    const left = await pollUntil('every object of the release to be deleted', async () => {
      const live = await liveObjects(manifest);
      return live.length === 0 ? live : undefined;
    });
    assert.deepEqual(left, []);
    assert.equal(helm(['list', '--all-namespaces', '--short']).stdout.trim(), '', 'no release left');
  });

  test('tls.mode=secret: install over a Secret made with certs/generate.sh, uninstall leaves that Secret alone', { timeout: STEP_TIMEOUT_MS }, async () => {
    const own = generateCerts(join(workDir, 'own-tls'));
    await cluster.kubectl(['-n', NAMESPACE, 'create', 'secret', 'tls', 'my-tls', '--cert', own.certFile, '--key', own.keyFile]);
    helm(['install', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--values', valuesFile({ tls: { mode: 'secret', secret: { name: 'my-tls', caBundle: own.caBundle } } })]);
    const config = await getJson(cluster, ['mutatingwebhookconfiguration', WEBHOOK_CONFIG]);
    assert.equal(config.webhooks[0].clientConfig.caBundle, own.caBundle);
    const deployment = await getJson(cluster, ['deployment', RELEASE, '-n', NAMESPACE]);
    assert.equal(deployment.spec.template.spec.volumes[0].secret.secretName, 'my-tls');
    const declared = parseObjects(releaseManifest(), 'helm get manifest').map((o) => kindOf(o as Obj));
    assert.ok(!declared.includes('v1 Secret'), 'the chart makes no Secret in this mode');

    helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait']);
    const secret = await getJson(cluster, ['secret', 'my-tls', '-n', NAMESPACE]);
    assert.equal(secret.data['tls.crt'], own.cert.toString('base64'), "the user's Secret stays");
    assert.equal((await cluster.kubectl(['get', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG], { allowFail: true })).code, 1);
  });

  test("the installed configuration, pointed at the webhook run with the Secret's pair, mutates a Service in an opted-in namespace", { timeout: STEP_TIMEOUT_MS }, async () => {
    const certs = await servingCertsFromSecret(installedSecret, join(workDir, 'tls'));
    // The Deployment's own flags (label prefix, log level, ...), minus the ones a loopback run sets.
    const extraArgs = installedArgs.filter((a) => !LOOPBACK_FLAGS.includes(a.split('=')[0]!));
    webhook = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir: workDir, name: 'helm-installed', extraArgs });

    // A copy of what helm installed; only clientConfig changes: the url instead of the Service,
    // and the same caBundle.
    const copy = adaptWebhookConfiguration({ apiVersion: installedConfig.apiVersion, kind: installedConfig.kind, metadata: { name: installedConfig.metadata.name }, webhooks: installedConfig.webhooks }, webhook.url, installedConfig.webhooks[0].clientConfig.caBundle);
    await cluster.kubectl(['create', '-f', '-'], { stdin: JSON.stringify(copy) });
    await cluster.kubectl(['create', 'namespace', 'shop']);
    await cluster.kubectl(['label', 'namespace', 'shop', 'realip.io/inject=enabled']);
    await cluster.kubectl(['create', 'namespace', 'elsewhere']);

    // The API server picks up a new webhook configuration within a moment: dry runs until then.
    const nodePort = (ns: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: ns },
      spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    await pollUntil('the API server to call the webhook', async () => {
      const { stdout } = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: JSON.stringify(nodePort('shop')) });
      return (JSON.parse(stdout) as Obj).spec.externalTrafficPolicy === 'Local' ? true : undefined;
    });

    const created = await cluster.kubectl(['create', '-f', '-'], { stdin: JSON.stringify(nodePort('shop')) });
    assert.match(created.stderr, /Warning: realip-webhook: set spec\.externalTrafficPolicy=Local/);
    const shop = await getJson(cluster, ['service', 'web', '-n', 'shop']);
    assert.equal(shop.spec.externalTrafficPolicy, 'Local', `mutated; webhook log:\n${await webhook.logTail(10)}`);

    await cluster.kubectl(['create', '-f', '-'], { stdin: JSON.stringify(nodePort('elsewhere')) });
    const elsewhere = await getJson(cluster, ['service', 'web', '-n', 'elsewhere']);
    assert.equal(elsewhere.spec.externalTrafficPolicy, 'Cluster', 'a namespace that is not opted in is left alone');
  });
  // A release of its own: the one above is gone by now.
  const POLICY_RELEASE = 'realip-policy';
  if (atLeast('1.36')) {
    test('engine=policy: install creates only the policies and bindings, which mutate in an opted-in namespace; uninstall leaves nothing', { timeout: STEP_TIMEOUT_MS }, async () => {
      const r = helm(['install', POLICY_RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--create-namespace', '--values', valuesFile({ engine: 'policy' })]);
      assert.match(r.stdout, /STATUS: deployed/);
      const manifest = helm(['get', 'manifest', POLICY_RELEASE, '--namespace', NAMESPACE]).stdout;
      const live = await liveObjects(manifest);
      assert.deepEqual([...new Set(live.map(kindOf))].sort(), [
        'admissionregistration.k8s.io/v1 MutatingAdmissionPolicy',
        'admissionregistration.k8s.io/v1 MutatingAdmissionPolicyBinding',
        'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy',
        'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding',
      ]);
      await cluster.kubectl(['create', 'namespace', 'policy-opted-in']);
      await cluster.kubectl(['label', 'namespace', 'policy-opted-in', 'realip.io/inject=enabled']);
      const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'policy-opted-in' }, spec: { type: 'NodePort', ports: [{ port: 80 }] } };
      await pollUntil('the installed policies to set externalTrafficPolicy Local', async () => {
        const { stdout, stderr } = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: JSON.stringify(svc) });
        return JSON.parse(stdout).spec.externalTrafficPolicy === 'Local' && /realip-webhook: set spec\.externalTrafficPolicy=Local/.test(stderr) ? true : undefined;
      });

      helm(['uninstall', POLICY_RELEASE, '--namespace', NAMESPACE, '--wait']);
      const left = await pollUntil('every policy and binding to be deleted', async () => {
        const remaining = await liveObjects(manifest);
        return remaining.length === 0 ? remaining : undefined;
      });
      assert.deepEqual(left, []);
      const { stdout } = await cluster.kubectl(['get', 'mutatingadmissionpolicies,mutatingadmissionpolicybindings,validatingadmissionpolicies,validatingadmissionpolicybindings', '-o', 'name']);
      assert.equal(stdout.trim(), '', 'no admission policy left in the cluster');
    });
  } else {
    test(`engine=policy: refused on Kubernetes ${release.version}, before anything is installed`, { timeout: STEP_TIMEOUT_MS }, () => {
      const r = helm(['install', POLICY_RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--create-namespace', '--values', valuesFile({ engine: 'policy' })], { allowFail: true });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /engine=policy needs Kubernetes 1\.36 or newer/);
      assert.equal(helm(['list', '--all-namespaces', '--short']).stdout.includes(POLICY_RELEASE), false);
    });
  }
});
