// Renders manifests/ with `kubectl kustomize` and checks the facts the product depends on.
//   node --import tsx --test test/manifests/*.test.ts
// Everything is rendered from a temporary copy of manifests/, so generated keys (plain overlay)
// and throw-away overlays (components) never touch the working tree.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePolicies } from '../../src/policy/policies.js';
import { copyManifests, REPO_ROOT } from '../support/repo.js';
import { parse, parseAllDocuments } from 'yaml';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: Any;
}

const NS = 'realip-system';
const WEBHOOK_CONFIG = '00-realip-webhook';
const TLS_SECRET = 'realip-webhook-tls';
const SERVICE_DNS = ['realip-webhook.realip-system.svc', 'realip-webhook.realip-system.svc.cluster.local'];

const kubectlProbe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const skipReason = kubectlProbe.error
  ? `kubectl not found on PATH (${kubectlProbe.error.message}); ` +
    'install kubectl (it bundles kustomize) to render manifests/'
  : undefined;

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-manifests-'));
  copyManifests(work);
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function render(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const docs = parseAllDocuments(out);
  for (const d of docs) assert.deepEqual(d.errors, [], `kubectl kustomize ${dir} printed invalid YAML`);
  return docs.map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

/** A throw-away overlay in the temp copy: `resources` and `components` relative to manifests/. */
function renderComposed(name: string, resources: string[], components: string[]): K8sObject[] {
  const dir = join(work, 'composed', name);
  mkdirSync(dir, { recursive: true });
  const rel = (p: string) => `../../manifests/${p}`;
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n' +
      `resources:\n${resources.map((r) => `  - ${rel(r)}\n`).join('')}` +
      `components:\n${components.map((c) => `  - ${rel(c)}\n`).join('')}`,
  );
  return render(dir);
}

function all(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}
function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected exactly one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}
/** The configuration's webhook entries, checked to be the four kinds of object in order. */
function webhooksOf(objs: K8sObject[]): Any[] {
  const cfg = one(objs, 'MutatingWebhookConfiguration');
  assert.deepEqual(cfg.webhooks.map((w: Any) => w.name), Object.keys(EXPECTED_ENTRIES));
  return cfg.webhooks;
}
function containerOf(objs: K8sObject[]): Any {
  const dep = one(objs, 'Deployment', 'realip-webhook');
  assert.equal(dep.spec.template.spec.containers.length, 1, 'one container');
  return dep.spec.template.spec.containers[0];
}
function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const WORKLOAD_TEMPLATE_CHANGED = [
  "request.operation == 'CREATE'",
  '|| object.spec.template != oldObject.spec.template',
  '|| (has(object.spec.replicas) && (!has(oldObject.spec.replicas) || object.spec.replicas != oldObject.spec.replicas))',
  '|| (has(object.spec.strategy) && (!has(oldObject.spec.strategy) || object.spec.strategy != oldObject.spec.strategy))',
].join(' ');

/** Rules and matchConditions of each entry; every other field is the same in all of them. */
const EXPECTED_ENTRIES: Record<string, { rules: Any[]; matchConditions?: Any[] }> = {
  'services.realip.io': {
    rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['services'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
    matchConditions: [{ name: 'node-port-or-load-balancer', expression: "has(object.spec.type) && object.spec.type in ['NodePort', 'LoadBalancer']" }],
  },
  'workloads.realip.io': {
    rules: [
      {
        apiGroups: ['apps'],
        apiVersions: ['v1'],
        resources: ['deployments', 'statefulsets', 'replicasets', 'daemonsets'],
        operations: ['CREATE', 'UPDATE'],
        scope: 'Namespaced',
      },
      { apiGroups: ['batch'], apiVersions: ['v1'], resources: ['jobs'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' },
    ],
    matchConditions: [{ name: 'create-or-template-replicas-or-strategy-changed', expression: WORKLOAD_TEMPLATE_CHANGED }],
  },
  'cronjobs.realip.io': {
    // Any version: CronJob was batch/v1beta1 before 1.21.
    rules: [{ apiGroups: ['batch'], apiVersions: ['*'], resources: ['cronjobs'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
    matchConditions: [
      {
        name: 'create-or-template-changed',
        expression: "request.operation == 'CREATE' || object.spec.jobTemplate.spec.template != oldObject.spec.jobTemplate.spec.template",
      },
    ],
  },
  'pods.realip.io': {
    // Pods on CREATE only, and always: Istio reads the annotation when the Pod is created.
    rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }],
  },
};

/** Facts every install path must share. */
function assertCommon(objs: K8sObject[], opts: { matchConditions?: false } = {}): void {
  // --- MutatingWebhookConfiguration ---
  const cfg = one(objs, 'MutatingWebhookConfiguration');
  assert.equal(cfg.metadata.name, WEBHOOK_CONFIG);
  // The API server calls mutating webhooks in name order (byte-wise); Istio's injector must come after us.
  for (const istio of ['istio-', 'istio-sidecar-injector', 'istio-revision-tag-default']) {
    assert.ok(cfg.metadata.name < istio, `${cfg.metadata.name} must sort before ${istio}`);
  }
  for (const wh of webhooksOf(objs)) {
    const expected = EXPECTED_ENTRIES[wh.name]!;
    assert.deepEqual(wh.rules, expected.rules, `${wh.name} rules`);
    assert.deepEqual(wh.matchConditions, opts.matchConditions === false ? undefined : expected.matchConditions, `${wh.name} matchConditions`);
    assert.deepEqual(wh.clientConfig.service, { name: 'realip-webhook', namespace: NS, path: '/mutate', port: 443 });
    assert.equal(wh.clientConfig.url, undefined, 'in-cluster config dials the Service, not a url');
    assert.deepEqual(wh.namespaceSelector, {
      matchExpressions: [{ key: 'realip.io/inject', operator: 'In', values: ['enabled'] }],
    });
    assert.equal(wh.objectSelector, undefined);
    assert.equal(wh.sideEffects, 'None');
    assert.equal(wh.timeoutSeconds, 5);
    assert.equal(wh.reinvocationPolicy, 'IfNeeded');
    assert.equal(wh.matchPolicy, 'Equivalent');
    assert.deepEqual(wh.admissionReviewVersions, ['v1', 'v1beta1']);
  }

  // --- RBAC: namespaces get/list/watch, and the repair's reads and its two writes ---
  assert.equal(all(objs, 'Role').length, 0, 'no namespaced Role');
  const role = one(objs, 'ClusterRole');
  assert.equal(role.metadata.name, 'realip-webhook');
  assert.deepEqual(role.rules, [NAMESPACES_RULE, ...REPAIR_RULES]);
  const binding = one(objs, 'ClusterRoleBinding');
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'realip-webhook' });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'realip-webhook', namespace: NS }]);
  one(objs, 'ServiceAccount', 'realip-webhook');

  // --- Namespace: exists, and is not opted in (the webhook must not intercept its own pods) ---
  const ns = one(objs, 'Namespace', NS);
  assert.notEqual(ns.metadata.labels?.['realip.io/inject'], 'enabled');
  const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'PriorityClass']);
  for (const o of objs) {
    if (!clusterScoped.has(o.kind)) assert.equal(o.metadata.namespace, NS, `${o.kind}/${o.metadata.name} namespace`);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'realip-webhook', `${o.kind}/${o.metadata.name} name label`);
  }

  // --- Deployment ---
  const dep = one(objs, 'Deployment', 'realip-webhook');
  const pod = dep.spec.template.spec;
  const podLabels: Record<string, string> = dep.spec.template.metadata.labels;
  assert.equal(dep.spec.replicas, 2);
  assert.ok(matches(dep.spec.selector.matchLabels, podLabels), 'Deployment selector matches its pod labels');
  assert.equal(podLabels['app.kubernetes.io/name'], 'realip-webhook');
  assert.equal(pod.serviceAccountName, 'realip-webhook');
  assert.notEqual(pod.automountServiceAccountToken, false, 'in-cluster config needs the token');

  assert.equal(pod.priorityClassName, 'realip-webhook');
  const pc = one(objs, 'PriorityClass', 'realip-webhook');
  assert.ok(pc.value > 0 && pc.value <= 1_000_000_000, 'user PriorityClass values must be <= 1e9');
  assert.notEqual(pc.globalDefault, true);

  const anti = pod.affinity.podAntiAffinity;
  const terms: Any[] = [
    ...(anti.requiredDuringSchedulingIgnoredDuringExecution ?? []),
    ...(anti.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p: Any) => p.podAffinityTerm),
  ];
  assert.ok(
    terms.some((t) => t.topologyKey === 'kubernetes.io/hostname' && matches(t.labelSelector.matchLabels, podLabels)),
    'anti-affinity on kubernetes.io/hostname selecting the webhook pods themselves',
  );

  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.runAsUser, 1000, 'uid of the node image user, USER 1000 in the Dockerfile');
  assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.ok(pod.terminationGracePeriodSeconds >= 10 && pod.terminationGracePeriodSeconds <= 60);

  const c = containerOf(objs);
  assert.equal(c.image, 'realip-webhook:0.1.0');
  assert.equal(c.command, undefined, 'the image ENTRYPOINT (node dist/cli.js serve) is used');
  const sc = c.securityContext;
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.notEqual(sc.privileged, true);
  assert.deepEqual(sc.capabilities.drop, ['ALL']);
  assert.equal(sc.capabilities.add, undefined);
  assert.notEqual(sc.runAsNonRoot, false);
  assert.equal(sc.seccompProfile?.type ?? pod.securityContext.seccompProfile.type, 'RuntimeDefault');

  const ports = Object.fromEntries(c.ports.map((p: Any) => [p.name, p.containerPort]));
  assert.deepEqual(ports, { https: 8443, metrics: 9090 });
  const args: string[] = c.args;
  for (const a of ['--host=0.0.0.0', '--port=8443', '--metrics-port=9090']) assert.ok(args.includes(a), `arg ${a}`);
  assert.ok(!args.includes('--fail-closed'), 'fails open by default');
  assert.ok(!args.some((a) => a.startsWith('--kubeconfig')), 'in-cluster config, no kubeconfig');

  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'https', scheme: 'HTTPS' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'https', scheme: 'HTTPS' });
  const preStop: string[] = c.lifecycle.preStop.exec.command;
  assert.equal(preStop[0], '/bin/sh');
  assert.match(preStop.join(' '), /\bsleep [1-9]\d*\b/);

  assert.ok(c.resources.requests.cpu, 'cpu request');
  assert.ok(c.resources.requests.memory, 'memory request');
  assert.ok(c.resources.limits.memory, 'memory limit');

  // TLS files come from a directory mount of the Secret (no subPath: it would never see renewals).
  const mount = c.volumeMounts.find((m: Any) => m.name === 'tls');
  assert.ok(mount, 'tls volume mounted');
  assert.equal(mount.subPath, undefined);
  assert.equal(mount.readOnly, true);
  assert.ok(args.includes(`--tls-cert=${mount.mountPath}/tls.crt`), '--tls-cert points into the mounted Secret');
  assert.ok(args.includes(`--tls-key=${mount.mountPath}/tls.key`), '--tls-key points into the mounted Secret');
  const vol = pod.volumes.find((v: Any) => v.name === 'tls');
  assert.equal(vol.secret.secretName, TLS_SECRET);

  // --- Service and PDB select the pods ---
  const svc = one(objs, 'Service', 'realip-webhook');
  assert.ok(matches(svc.spec.selector, podLabels), 'Service selects the webhook pods');
  const svcPorts = Object.fromEntries(svc.spec.ports.map((p: Any) => [p.name, [p.port, p.targetPort]]));
  assert.deepEqual(svcPorts, { https: [443, 'https'], metrics: [9090, 'metrics'] });

  const pdb = one(objs, 'PodDisruptionBudget', 'realip-webhook');
  assert.equal(pdb.spec.minAvailable, 1);
  assert.ok(matches(pdb.spec.selector.matchLabels, podLabels), 'PDB selects the webhook pods');
}

test('base/mutatingwebhookconfiguration.yaml holds exactly the one MutatingWebhookConfiguration', () => {
  const docs = parseAllDocuments(readFileSync(join(REPO_ROOT, 'manifests/base/mutatingwebhookconfiguration.yaml'), 'utf8'));
  assert.equal(docs.length, 1);
  const cfg = docs[0]!.toJS() as K8sObject;
  assert.equal(cfg.kind, 'MutatingWebhookConfiguration');
  assert.equal(cfg.apiVersion, 'admissionregistration.k8s.io/v1');
  assert.equal(cfg.metadata.name, WEBHOOK_CONFIG);
  for (const wh of cfg.webhooks) {
    assert.equal(wh.failurePolicy, 'Ignore');
    assert.equal(wh.clientConfig.caBundle, undefined, 'the overlays supply the caBundle');
  }
});

test('overlays/cert-manager renders: issuer chain, Certificate, CA injection', (t) => {
  if (skipReason) return t.skip(skipReason);
  const objs = render(join(work, 'manifests/overlays/cert-manager'));
  assertCommon(objs);

  const cfg = one(objs, 'MutatingWebhookConfiguration');
  const inject = cfg.metadata.annotations?.['cert-manager.io/inject-ca-from'];
  assert.equal(inject, `${NS}/realip-webhook`);
  for (const wh of webhooksOf(objs)) {
    assert.equal(wh.failurePolicy, 'Ignore');
    assert.equal(wh.clientConfig.caBundle, undefined, 'cainjector fills the caBundle');
  }
  assert.equal(all(objs, 'Secret').length, 0, 'cert-manager owns the Secret');

  // The annotation names a Certificate that exists and serves the Service's DNS names.
  const [injectNs, injectName] = inject!.split('/');
  const cert = one(objs, 'Certificate', injectName);
  assert.equal(cert.metadata.namespace, injectNs);
  assert.equal(cert.spec.secretName, TLS_SECRET);
  for (const dns of SERVICE_DNS) assert.ok(cert.spec.dnsNames.includes(dns), `Certificate dnsNames has ${dns}`);
  assert.ok(!cert.spec.isCA);

  // Its issuer chain is complete: CA Issuer -> CA Certificate (isCA) -> self-signed Issuer.
  const caIssuer = one(objs, 'Issuer', cert.spec.issuerRef.name);
  assert.equal(cert.spec.issuerRef.kind, 'Issuer');
  const caCert = all(objs, 'Certificate').find((c) => c.spec.secretName === caIssuer.spec.ca?.secretName);
  assert.ok(caCert, 'the CA Issuer reads the Secret of a CA Certificate in this overlay');
  assert.equal(caCert.spec.isCA, true);
  assert.notEqual(caCert.spec.secretName, TLS_SECRET);
  const root = one(objs, 'Issuer', caCert.spec.issuerRef.name);
  assert.deepEqual(root.spec.selfSigned, {});
});

test('overlays/plain renders with certs/generate.sh output; caBundle is the generated CA', (t) => {
  if (skipReason) return t.skip(skipReason);
  const openssl = spawnSync('openssl', ['version']);
  if (openssl.error) return t.skip(`openssl not found (${openssl.error.message}): certs/generate.sh needs it`);

  const overlay = join(work, 'manifests/overlays/plain');
  const tlsDir = join(overlay, 'tls');
  const printed = execFileSync('bash', [join(REPO_ROOT, 'certs/generate.sh'), '--out', tlsDir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
  const caPem = readFileSync(join(tlsDir, 'ca.crt'), 'utf8');
  assert.equal(printed, Buffer.from(caPem).toString('base64'), 'generate.sh prints base64 of ca.crt');
  const serving = new X509Certificate(readFileSync(join(tlsDir, 'tls.crt')));
  assert.deepEqual([serving.publicKey.asymmetricKeyType, serving.publicKey.asymmetricKeyDetails?.namedCurve], ['ec', 'prime256v1'], 'an ECDSA P-256 serving key');

  const objs = render(overlay);
  assertCommon(objs);
  assert.equal(one(objs, 'MutatingWebhookConfiguration').metadata.annotations?.['cert-manager.io/inject-ca-from'], undefined);
  const caBundles = webhooksOf(objs).map((wh) => String(wh.clientConfig.caBundle).replace(/\s+/g, ''));
  assert.deepEqual(caBundles, caBundles.map(() => printed), 'every entry\'s caBundle equals what certs/generate.sh printed');
  for (const wh of webhooksOf(objs)) assert.equal(wh.failurePolicy, 'Ignore');
  const caBundle = printed;

  // The Secret the Deployment mounts: stable name, TLS type, no CA private key.
  const secret = one(objs, 'Secret');
  assert.equal(secret.metadata.name, TLS_SECRET, 'no hash suffix: same name as the Deployment volume');
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.deepEqual(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  const file = (key: string) => Buffer.from(String(secret.data[key]).replace(/\s+/g, ''), 'base64').toString('utf8');
  assert.equal(file('tls.crt'), readFileSync(join(tlsDir, 'tls.crt'), 'utf8'));
  assert.equal(file('tls.key'), readFileSync(join(tlsDir, 'tls.key'), 'utf8'));

  // The API server, trusting caBundle, accepts the served certificate for the name it dials.
  const ca = new X509Certificate(Buffer.from(caBundle, 'base64'));
  const leaf = new X509Certificate(file('tls.crt'));
  assert.ok(leaf.verify(ca.publicKey), 'tls.crt is signed by the caBundle CA');
  assert.equal(leaf.checkHost(SERVICE_DNS[0]!), SERVICE_DNS[0]);
});

const NAMESPACES_RULE = { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] };
/** What serve's repair reads (every kind the webhook mutates but Pods) and writes (Services, Events). */
const REPAIR_RULES = [
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'replicasets', 'daemonsets'], verbs: ['list', 'watch'] },
  { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

test('overlays/plain has its tls/ directory git-ignored', () => {
  const ignore = readFileSync(join(REPO_ROOT, 'manifests/overlays/plain/.gitignore'), 'utf8');
  assert.match(ignore, /^\/?tls\/?$/m);
  const plain = parse(readFileSync(join(REPO_ROOT, 'manifests/overlays/plain/kustomization.yaml'), 'utf8'));
  const files: string[] = plain.secretGenerator[0].files;
  assert.ok(files.every((f) => f.split('=').pop()!.startsWith('tls/')), 'generator reads only from tls/');
  assert.ok(!files.some((f) => f.includes('ca.key')), 'the CA key never goes into the Secret');
});

test('components/fail-closed: failurePolicy Fail and --fail-closed, nothing else changes', (t) => {
  if (skipReason) return t.skip(skipReason);
  const open = render(join(work, 'manifests/overlays/cert-manager'));
  const closed = renderComposed('fail-closed', ['overlays/cert-manager'], ['components/fail-closed']);
  assertCommonExcept(closed);

  assert.deepEqual(webhooksOf(closed).map((w) => w.failurePolicy), ['Fail', 'Fail', 'Fail', 'Fail']);
  assert.deepEqual(webhooksOf(closed).map((w) => ({ ...w, failurePolicy: 'Ignore' })), webhooksOf(open));
  const args: string[] = containerOf(closed).args;
  assert.ok(args.includes('--fail-closed'));
  assert.deepEqual(args.filter((a) => a !== '--fail-closed'), containerOf(open).args);
});

test('components/watch-nodes: nodes get/list/watch and --watch-nodes', (t) => {
  if (skipReason) return t.skip(skipReason);
  const objs = renderComposed('watch-nodes', ['base'], ['components/watch-nodes']);
  assert.deepEqual(one(objs, 'ClusterRole').rules, [
    NAMESPACES_RULE,
    ...REPAIR_RULES,
    { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  ]);
  assert.ok((containerOf(objs).args as string[]).includes('--watch-nodes'));
});

test('components/no-repair: namespaces get/list/watch only and --repair=off, nothing else changes; with watch-nodes in either order', (t) => {
  if (skipReason) return t.skip(skipReason);
  const base = render(join(work, 'manifests/base'));
  const objs = renderComposed('no-repair', ['base'], ['components/no-repair']);
  assert.deepEqual(one(objs, 'ClusterRole').rules, [NAMESPACES_RULE]);
  const args: string[] = containerOf(objs).args;
  assert.deepEqual(args, [...containerOf(base).args, '--repair=off']);
  const rest = (list: K8sObject[]) => list.filter((o) => o.kind !== 'ClusterRole' && o.kind !== 'Deployment');
  assert.deepEqual(rest(objs), rest(base));
  for (const order of [['components/no-repair', 'components/watch-nodes'], ['components/watch-nodes', 'components/no-repair']]) {
    const both = renderComposed(`no-repair-${order[0]!.split('/')[1]}`, ['base'], order);
    assert.deepEqual(one(both, 'ClusterRole').rules, [NAMESPACES_RULE, { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }], order.join(' then '));
  }
});

test('components/before-1.30: the same configuration without matchConditions, nothing else changes', (t) => {
  if (skipReason) return t.skip(skipReason);
  const current = render(join(work, 'manifests/overlays/cert-manager'));
  const old = renderComposed('before-1.30', ['overlays/cert-manager'], ['components/before-1.30']);
  assertCommon(old, { matchConditions: false });
  const withoutConditions = webhooksOf(current).map(({ matchConditions: _, ...rest }) => rest);
  assert.deepEqual(webhooksOf(old), withoutConditions);
  assert.deepEqual(old.filter((o) => o.kind !== 'MutatingWebhookConfiguration'), current.filter((o) => o.kind !== 'MutatingWebhookConfiguration'));
});

test('components/before-1.21: the PodDisruptionBudget as policy/v1beta1 for Kubernetes 1.20, nothing else changes', (t) => {
  if (skipReason) return t.skip(skipReason);
  const current = renderComposed('before-1.30-only', ['overlays/cert-manager'], ['components/before-1.30']);
  const old = renderComposed('before-1.21', ['overlays/cert-manager'], ['components/before-1.30', 'components/before-1.21']);
  assert.equal(one(old, 'PodDisruptionBudget').apiVersion, 'policy/v1beta1');
  assert.deepEqual({ ...one(old, 'PodDisruptionBudget'), apiVersion: 'policy/v1' }, one(current, 'PodDisruptionBudget'));
  assert.deepEqual(old.filter((o) => o.kind !== 'PodDisruptionBudget'), current.filter((o) => o.kind !== 'PodDisruptionBudget'));
});

/** assertCommon for a render that is expected to differ only in failurePolicy and --fail-closed. */
function assertCommonExcept(objs: K8sObject[]): void {
  const copy: K8sObject[] = structuredClone(objs);
  const cfg = one(copy, 'MutatingWebhookConfiguration');
  for (const wh of cfg.webhooks) wh.failurePolicy = 'Ignore';
  const c = containerOf(copy);
  c.args = (c.args as string[]).filter((a) => a !== '--fail-closed');
  assertCommon(copy);
}

test("overlays/policy renders the `realip-webhook policy` objects with the base's labels, and nothing of the webhook", (t) => {
  if (skipReason) return t.skip(skipReason);
  const objs = render(join(work, 'manifests/overlays/policy'));
  const labels = { 'app.kubernetes.io/name': 'realip-webhook', 'app.kubernetes.io/part-of': 'realip-webhook' };
  const expected: K8sObject[] = generatePolicies('realip.io').map((o) => ({ ...o, metadata: { ...o.metadata, labels } }));
  // kustomize sorts the objects its own way.
  const byId = (list: K8sObject[]) => [...list].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
  assert.deepEqual(byId(objs), byId(expected));
  for (const kind of ['Deployment', 'Service', 'Secret', 'MutatingWebhookConfiguration', 'Namespace']) {
    assert.ok(!objs.some((o) => o.kind === kind), `no ${kind}`);
  }
});
