// The Helm chart without a cluster: lint, the values schema, what each value renders, and no
// drift from the kustomize manifests (object by object, per certificate mode and component).
//   node --import tsx --test test/helm/chart.test.ts      (npm run test:helm runs it)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isMap, parse, parseDocument, type YAMLMap } from 'yaml';
import { generatePolicies } from '../../src/policy/policies.js';
import { copyManifests, REPO_ROOT } from '../support/repo.js';
import { HELM_STANDARD_LABELS, driftBetween, type K8sObject } from './drift.js';
import { CHART_DIR, NAMESPACE, RELEASE, helmTemplate, helmTemplateRun, kustomize, runHelm, valuesFile } from './helm.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const SERVICE_DNS = [`${RELEASE}.${NAMESPACE}.svc`, `${RELEASE}.${NAMESPACE}.svc.cluster.local`];

let work = '';
let plainCaBundle = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-helm-chart-'));
  copyManifests(work);
  // The plain overlay needs certs/generate.sh output in its own tls/ directory.
  plainCaBundle = execFileSync('bash', [join(REPO_ROOT, 'certs/generate.sh'), '--out', join(work, 'manifests/overlays/plain/tls')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** kustomize of an overlay plus components, through a throw-away kustomization in the temp copy. */
function kustomizeComposed(overlay: string, components: string[] = [], root = join(work, 'manifests')): K8sObject[] {
  const dir = mkdtempSync(join(work, 'composed-'));
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n' +
      // kustomize takes relative paths only.
      `resources:\n  - ${relative(dir, join(root, overlay))}\n` +
      (components.length ? `components:\n${components.map((c) => `  - ${relative(dir, join(root, c))}\n`).join('')}` : ''),
  );
  return kustomize(dir);
}

function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected exactly one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}
function none(objs: K8sObject[], kind: string): void {
  assert.deepEqual(objs.filter((o) => o.kind === kind).map((o) => o.metadata.name), [], `no ${kind}`);
}
const webhooksOf = (objs: K8sObject[]): Any[] => one(objs, 'MutatingWebhookConfiguration').webhooks;
/** The one value a field has in every webhook entry (they differ only in rules and matchConditions). */
function everyEntry(objs: K8sObject[], pick: (entry: Any) => unknown): unknown {
  const values = webhooksOf(objs).map(pick);
  assert.ok(values.length > 0 && values.every((v) => JSON.stringify(v) === JSON.stringify(values[0])), `the same in every entry: ${JSON.stringify(values)}`);
  return values[0];
}
const podOf = (objs: K8sObject[]): Any => one(objs, 'Deployment').spec.template.spec;
const containerOf = (objs: K8sObject[]): Any => podOf(objs).containers[0];
const b64 = (s: string) => Buffer.from(String(s).replace(/\s+/g, ''), 'base64').toString('utf8');

// Admission policies are GA from 1.36; the chart refuses engine=policy before.
const POLICY_KUBE_VERSION = '1.37.2';

const secretMode = () => ({ tls: { mode: 'secret', secret: { name: 'realip-webhook-tls', caBundle: plainCaBundle } } });

// --- Chart metadata and values documentation ---

test('Chart.yaml: apiVersion v2, version and appVersion are the package version', () => {
  const chart = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'));
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  assert.equal(chart.apiVersion, 'v2');
  assert.equal(chart.appVersion, pkg.version);
  assert.equal(chart.version, pkg.version);
});

interface ValuesWalk {
  /** Paths of the values a user sets (free-form maps such as resources count as one value). */
  values: string[];
  problems: string[];
}

/** values.yaml read beside values.schema.json: each value, and what is undocumented or unchecked. */
function walkValues(): ValuesWalk {
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'));
  const doc = parseDocument(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
  const out: ValuesWalk = { values: [], problems: [] };
  // Keys under a schema node with `properties` are the chart's own; free-form maps (resources,
  // affinity...) are one value, documented once.
  const walk = (map: YAMLMap, node: Any, path: string) => {
    const seen = new Set<string>();
    map.items.forEach((pair, i) => {
      const key = String((pair.key as Any).value);
      const at = `${path}${key}`;
      seen.add(key);
      const prop = node.properties?.[key];
      if (!prop) return out.problems.push(`${at}: not in values.schema.json`);
      if (prop.properties && isMap(pair.value)) return walk(pair.value, prop, `${at}.`);
      out.values.push(at);
      // yaml keeps a comment above a map's first key on the map itself.
      const comment = (pair.key as Any).commentBefore ?? (i === 0 ? map.commentBefore : undefined);
      if (!comment?.trim()) out.problems.push(`${at}: no comment`);
    });
    for (const key of Object.keys(node.properties ?? {})) {
      if (!seen.has(key) && !(path === '' && key === 'global')) out.problems.push(`${path}${key}: in the schema, not in values.yaml`);
    }
  };
  walk(doc.contents as YAMLMap, schema, '');
  return out;
}

test('values.yaml: every value has a comment and a schema entry, and the schema has no value left out', () => {
  const { values, problems } = walkValues();
  assert.ok(values.length >= 30, `found ${values.length} values`);
  assert.deepEqual(problems, []);
});

test("the chart README's values table names every value", () => {
  const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Values'));
  assert.deepEqual(walkValues().values.filter((v) => !table.includes(`\`${v}\``)), []);
});

// --- helm lint ---

// Functions: the secret mode's caBundle exists only once before() has run certs/generate.sh.
const LINT_CASES: [string, () => Record<string, unknown>][] = [
  ['default values (helm-generated certificates)', () => ({})],
  ['tls.mode=cert-manager', () => ({ tls: { mode: 'cert-manager' } })],
  ['tls.mode=helm with extra SANs', () => ({ tls: { mode: 'helm', helm: { extraDnsNames: ['webhook.example.test'], extraIpAddresses: ['127.0.0.1'] } } })],
  ['tls.mode=secret', () => secretMode()],
  [
    'every option on',
    () => ({
      failClosed: true,
      watchNodes: true,
      autoscaling: { enabled: true },
      serviceMonitor: { enabled: true },
      image: { digest: `sha256:${'a'.repeat(64)}` },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
      priorityClassName: 'system-cluster-critical',
    }),
  ],
];
for (const [name, values] of LINT_CASES) {
  test(`helm lint --strict passes: ${name}`, () => {
    const r = runHelm(['lint', '--strict', CHART_DIR, '--namespace', NAMESPACE, '--values', valuesFile(values())]);
    assert.equal(r.code, 0, `helm lint --strict failed:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });
}

test('helm lint --strict passes: engine=policy on Kubernetes 1.37', () => {
  const r = runHelm(['lint', '--strict', CHART_DIR, '--namespace', NAMESPACE, '--kube-version', POLICY_KUBE_VERSION, '--values', valuesFile({ engine: 'policy' })]);
  assert.equal(r.code, 0, `helm lint --strict failed:\n${r.stdout}${r.stderr}`);
});

test('helm lint --strict passes for Kubernetes 1.20 (policy/v1beta1 PDB, autoscaling/v2beta2 HPA)', () => {
  const values = valuesFile({ autoscaling: { enabled: true } });
  const r = runHelm(['lint', '--strict', CHART_DIR, '--namespace', NAMESPACE, '--kube-version', '1.20.2', '--values', values]);
  assert.equal(r.code, 0, `helm lint --strict failed:\n${r.stdout}${r.stderr}`);
});

// --- No drift from the kustomize manifests ---

test('no drift: tls.mode=cert-manager vs overlays/cert-manager', () => {
  const helm = helmTemplate({ values: { tls: { mode: 'cert-manager' } } });
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/cert-manager')), []);
});

test('no drift: tls.mode=helm vs overlays/plain (apart from the generated key material)', () => {
  const helm = helmTemplate();
  const plain = kustomizeComposed('overlays/plain');
  assert.deepEqual(driftBetween(helm, plain, { generatedCertificates: true }), []);
  // The allowance covers the values only: on each side the caBundle is the Secret's ca.crt.
  for (const objs of [helm, plain]) {
    assert.equal(everyEntry(objs, (w) => w.clientConfig.caBundle), one(objs, 'Secret').data['ca.crt']);
  }
});

test('no drift: tls.mode=secret (caBundle value) vs overlays/plain without its Secret', () => {
  const helm = helmTemplate({ values: secretMode() });
  none(helm, 'Secret');
  const plain = kustomizeComposed('overlays/plain').filter((o) => o.kind !== 'Secret');
  assert.deepEqual(driftBetween(helm, plain), []);
});

test('no drift: engine=policy vs overlays/policy', () => {
  const helm = helmTemplate({ values: { engine: 'policy' }, kubeVersion: POLICY_KUBE_VERSION });
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/policy')), []);
});

test('no drift: Kubernetes 1.29 (matchConditions auto) vs components/before-1.30', () => {
  const helm = helmTemplate({ values: { tls: { mode: 'cert-manager' } }, kubeVersion: '1.29.0' });
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/cert-manager', ['components/before-1.30'])), []);
});

test('matchConditions: auto renders them from Kubernetes 1.30 on; true and false decide whatever the version', () => {
  const withConditions = (values: Any, kubeVersion: string) =>
    webhooksOf(helmTemplate({ values, kubeVersion })).map((w) => (w.matchConditions ?? []).length > 0);
  assert.deepEqual(withConditions({}, '1.29.9'), [false, false, false, false]);
  assert.deepEqual(withConditions({}, '1.30.0'), [true, true, true, false], 'pods have no condition: every Pod CREATE is answered');
  assert.deepEqual(withConditions({ matchConditions: false }, '1.37.2'), [false, false, false, false]);
  assert.deepEqual(withConditions({ matchConditions: true }, '1.29.0'), [true, true, true, false]);
  const r = runHelm(['template', RELEASE, CHART_DIR, '--set', 'matchConditions=sometimes']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /matchConditions/);
});

test('no drift: failClosed=true vs components/fail-closed', () => {
  const helm = helmTemplate({ values: { tls: { mode: 'cert-manager' }, failClosed: true } });
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/cert-manager', ['components/fail-closed'])), []);
});

test('no drift: watchNodes=true vs components/watch-nodes', () => {
  const helm = helmTemplate({ values: { tls: { mode: 'cert-manager' }, watchNodes: true } });
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/cert-manager', ['components/watch-nodes'])), []);
});

test('no drift: repair=false vs components/no-repair, alone and with watch-nodes', () => {
  const helm = helmTemplate({ values: { tls: { mode: 'cert-manager' }, repair: false } });
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/cert-manager', ['components/no-repair'])), []);
  const rules = one(helm, 'ClusterRole').rules.map((r: Any) => r.resources.join(','));
  assert.deepEqual(rules, ['namespaces']);
  // The chart passes --watch-nodes before --repair=off: the components in that order.
  const both = helmTemplate({ values: { tls: { mode: 'cert-manager' }, repair: false, watchNodes: true } });
  assert.deepEqual(driftBetween(both, kustomizeComposed('overlays/cert-manager', ['components/watch-nodes', 'components/no-repair'])), []);
});

test('no drift: tls.mode=helm, failClosed and watchNodes vs overlays/plain with both components', () => {
  const helm = helmTemplate({ values: { failClosed: true, watchNodes: true } });
  const plain = kustomizeComposed('overlays/plain', ['components/fail-closed', 'components/watch-nodes']);
  assert.deepEqual(driftBetween(helm, plain, { generatedCertificates: true }), []);
});

test('the drift check catches a change to the chart alone', () => {
  const chart = join(work, 'broken-chart');
  cpSync(CHART_DIR, chart, { recursive: true });
  const file = join(chart, 'templates', 'mutatingwebhookconfiguration.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('timeoutSeconds: 5', 'timeoutSeconds: 10'));
  const helm = helmTemplate({ chartDir: chart, values: { tls: { mode: 'cert-manager' } } });
  assert.deepEqual(
    driftBetween(helm, kustomizeComposed('overlays/cert-manager')),
    [0, 1, 2, 3].map((i) => `admissionregistration.k8s.io/v1 MutatingWebhookConfiguration 00-realip-webhook.webhooks[${i}].timeoutSeconds: helm 10, kustomize 5`),
  );
});

test('the drift check catches a change to the kustomize manifests alone', () => {
  const root = join(work, 'broken-manifests');
  cpSync(join(work, 'manifests'), root, { recursive: true });
  const file = join(root, 'base', 'deployment.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('sleep 5', 'sleep 7').replace('memory: 256Mi', 'memory: 300Mi'));
  const helm = helmTemplate({ values: { tls: { mode: 'cert-manager' } } });
  const key = 'apps/v1 Deployment realip-system/realip-webhook.spec.template.spec.containers[0]';
  assert.deepEqual(driftBetween(helm, kustomizeComposed('overlays/cert-manager', [], root)), [
    `${key}.lifecycle.preStop.exec.command[2]: helm "sleep 5", kustomize "sleep 7"`,
    `${key}.resources.limits.memory: helm "256Mi", kustomize "300Mi"`,
  ]);
});

test("Helm's standard labels, the one allowed label difference, are on every object with the release's values", () => {
  for (const o of helmTemplate({ values: { autoscaling: { enabled: true } } })) {
    const labels = o.metadata.labels ?? {};
    assert.deepEqual(
      HELM_STANDARD_LABELS.map((l) => labels[l]),
      [RELEASE, '0.1.0', 'Helm', 'realip-webhook-0.1.0'],
      `${o.kind}/${o.metadata.name} labels`,
    );
  }
});

// --- The schema refuses bad values with a message naming the value and what is allowed ---

const SCHEMA_CASES: [string, Record<string, unknown>, RegExp][] = [
  ['logLevel: loud', { logLevel: 'loud' }, /at '\/logLevel': value must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'/],
  ['replicas: -1', { replicas: -1 }, /at '\/replicas': minimum: got -1, want 1/],
  ['tls.mode: vault', { tls: { mode: 'vault' } }, /at '\/tls\/mode': value must be one of 'helm', 'cert-manager', 'secret'/],
  ['engine: both', { engine: 'both' }, /at '\/engine': value must be one of 'webhook', 'policy'/],
  // Helm lists these two in either order.
  ['tls.mode: secret without a name', { tls: { mode: 'secret', secret: { caBundle: 'Zm9v' } } }, /at '\/tls\/secret\/name': minLength: got 0, want 1/],
  ['tls.mode: secret without a caBundle', { tls: { mode: 'secret', secret: { name: 'x' } } }, /at '\/tls\/secret\/caBundle': minLength: got 0, want 1/],
  ['a caBundle that is not base64', { tls: { mode: 'secret', secret: { name: 'x', caBundle: '-----BEGIN CERTIFICATE-----' } } }, /at '\/tls\/secret\/caBundle': .* does not match pattern/],
  ['a misspelt value (replica)', { replica: 3 }, /additional properties 'replica' not allowed/],
  ['image.digest without sha256:', { image: { digest: 'abc' } }, /at '\/image\/digest': 'abc' does not match pattern/],
  ['tls.helm.extraIpAddresses: [localhost]', { tls: { helm: { extraIpAddresses: ['localhost'] } } }, /'localhost' is not valid ipv4/],
  // Beyond what a schema can say: checked in the templates, same kind of message.
  ['metrics.port: 8443', { metrics: { port: 8443 } }, /metrics.port must differ from 8443, the webhook's HTTPS port/],
  ['a PDB that could block every drain', { replicas: 1 }, /podDisruptionBudget.minAvailable \(1\) must be below the replicas \(1\)/],
  ['autoscaling.minReplicas > maxReplicas', { autoscaling: { enabled: true, minReplicas: 4, maxReplicas: 3 } }, /autoscaling.minReplicas \(4\) must not exceed autoscaling.maxReplicas \(3\)/],
];
for (const [name, values, message] of SCHEMA_CASES) {
  test(`refused: ${name}`, () => {
    const r = helmTemplateRun({ values });
    assert.notEqual(r.code, 0, `helm template accepted ${JSON.stringify(values)}`);
    assert.equal(r.stdout, '', 'nothing rendered');
    assert.match(r.stderr, message);
  });
}

// --- What the values render ---

test('tls.mode=helm: the caBundle CA signed the Secret\'s serving certificate for the Service names; no CA key stored', () => {
  const objs = helmTemplate({ values: { tls: { helm: { extraIpAddresses: ['127.0.0.1'], extraDnsNames: ['webhook.example.test'] } } } });
  const secret = one(objs, 'Secret', 'realip-webhook-tls');
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.deepEqual(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  const ca = new X509Certificate(b64(String(everyEntry(objs, (w) => w.clientConfig.caBundle))));
  const leaf = new X509Certificate(b64(secret.data['tls.crt']));
  assert.ok(ca.ca, 'caBundle is a CA certificate');
  assert.ok(leaf.verify(ca.publicKey), 'tls.crt is signed by the caBundle CA');
  for (const name of [...SERVICE_DNS, 'webhook.example.test']) assert.equal(leaf.checkHost(name), name);
  assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  assert.ok(leaf.checkPrivateKey(createPrivateKey(b64(secret.data['tls.key']))), 'tls.key belongs to tls.crt');
  // ECDSA P-256 for the cheaper handshake (see certs/generate.sh), like the other install paths.
  assert.deepEqual([leaf.publicKey.asymmetricKeyType, leaf.publicKey.asymmetricKeyDetails?.namedCurve], ['ec', 'prime256v1']);
  assert.equal(podOf(objs).volumes[0].secret.secretName, secret.metadata.name);
});

test('tls.mode=cert-manager: the injection annotation names the serving Certificate; no Secret, no caBundle', () => {
  const objs = helmTemplate({ values: { tls: { mode: 'cert-manager', certManager: { duration: '720h', renewBefore: '240h' } } } });
  none(objs, 'Secret');
  const cfg = one(objs, 'MutatingWebhookConfiguration');
  assert.equal(cfg.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${RELEASE}`);
  assert.equal(everyEntry(objs, (w) => w.clientConfig.caBundle), undefined);
  const cert = one(objs, 'Certificate', RELEASE);
  assert.deepEqual(cert.spec.dnsNames, SERVICE_DNS);
  assert.deepEqual([cert.spec.duration, cert.spec.renewBefore], ['720h', '240h']);
  assert.equal(cert.spec.secretName, podOf(objs).volumes[0].secret.secretName);
});

test('tls.mode=secret: the pods mount the named Secret and the caBundle is the value given', () => {
  const objs = helmTemplate({ values: { tls: { mode: 'secret', secret: { name: 'my-tls', caBundle: plainCaBundle } } } });
  assert.equal(podOf(objs).volumes[0].secret.secretName, 'my-tls');
  assert.equal(everyEntry(objs, (w) => w.clientConfig.caBundle), plainCaBundle);
  none(objs, 'Certificate');
});

test('failClosed sets failurePolicy Fail and --fail-closed together, and neither without it', () => {
  for (const failClosed of [false, true]) {
    const objs = helmTemplate({ values: { failClosed } });
    assert.equal(everyEntry(objs, (w) => w.failurePolicy), failClosed ? 'Fail' : 'Ignore');
    assert.equal((containerOf(objs).args as string[]).includes('--fail-closed'), failClosed);
  }
});

test('watchNodes adds nodes get/list/watch and --watch-nodes; repair: false leaves RBAC at namespaces (and nodes)', () => {
  for (const repair of [true, false]) {
    for (const watchNodes of [false, true]) {
      const objs = helmTemplate({ values: { watchNodes, repair } });
      const resources = one(objs, 'ClusterRole').rules.map((r: Any) => r.resources[0]);
      const expected = ['namespaces', ...(repair ? ['services', 'deployments', 'jobs', 'events'] : []), ...(watchNodes ? ['nodes'] : [])];
      assert.deepEqual(resources, expected, `repair ${repair}, watchNodes ${watchNodes}`);
      const args = containerOf(objs).args as string[];
      assert.equal(args.includes('--watch-nodes'), watchNodes);
      assert.equal(args.includes('--repair=off'), !repair);
    }
  }
});

test('labelPrefix moves the namespaceSelector key and --label-prefix together', () => {
  const objs = helmTemplate({ values: { labelPrefix: 'ip.example.com' } });
  assert.equal(everyEntry(objs, (w) => w.namespaceSelector.matchExpressions[0].key), 'ip.example.com/inject');
  assert.ok(containerOf(objs).args.includes('--label-prefix=ip.example.com'));
});

test('metrics.port moves the flag, the container port, the Service port and the scrape annotation together', () => {
  const objs = helmTemplate({ values: { metrics: { port: 9100 } } });
  assert.ok(containerOf(objs).args.includes('--metrics-port=9100'));
  assert.deepEqual(containerOf(objs).ports.find((p: Any) => p.name === 'metrics').containerPort, 9100);
  assert.deepEqual(one(objs, 'Service').spec.ports.find((p: Any) => p.name === 'metrics').port, 9100);
  assert.equal(one(objs, 'Deployment').spec.template.metadata.annotations['prometheus.io/port'], '9100');
});

test('image: tag defaults to appVersion; a digest pins it; logLevel reaches the flag', () => {
  assert.equal(containerOf(helmTemplate()).image, 'realip-webhook:0.1.0');
  const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
  const objs = helmTemplate({ values: { image: { repository: 'registry.example.test/realip-webhook', tag: '0.2.0', digest }, logLevel: 'debug' } });
  assert.equal(containerOf(objs).image, `registry.example.test/realip-webhook:0.2.0@${digest}`);
  assert.ok(containerOf(objs).args.includes('--log-level=debug'));
});

test('scheduling values: nodeSelector, tolerations, extra affinity beside the built-in anti-affinity, priorityClassName, replicas', () => {
  const extraTerm = { weight: 10, podAffinityTerm: { topologyKey: 'topology.kubernetes.io/zone', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'realip-webhook' } } } };
  const nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'node-role', operator: 'In', values: ['infra'] }] }] } };
  const objs = helmTemplate({
    values: {
      replicas: 3,
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
      affinity: { nodeAffinity, podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [extraTerm] } },
      priorityClassName: 'system-cluster-critical',
      resources: { requests: { cpu: '100m', memory: '200Mi' }, limits: { memory: '400Mi' } },
    },
  });
  const pod = podOf(objs);
  assert.equal(one(objs, 'Deployment').spec.replicas, 3);
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  assert.equal(pod.tolerations[0].value, 'infra');
  assert.deepEqual(pod.affinity.nodeAffinity, nodeAffinity);
  const preferred = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
  assert.deepEqual(preferred.map((t: Any) => t.podAffinityTerm.topologyKey), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
  assert.equal(pod.priorityClassName, 'system-cluster-critical');
  none(objs, 'PriorityClass');
  assert.deepEqual(containerOf(objs).resources, { requests: { cpu: '100m', memory: '200Mi' }, limits: { memory: '400Mi' } });
});

test('podDisruptionBudget.enabled=false leaves the PDB out', () => {
  none(helmTemplate({ values: { podDisruptionBudget: { enabled: false } } }), 'PodDisruptionBudget');
});

test('Kubernetes 1.20 gets policy/v1beta1 and autoscaling/v2beta2; newer clusters policy/v1 and autoscaling/v2', () => {
  const values = { autoscaling: { enabled: true } };
  const old = helmTemplate({ values, kubeVersion: '1.20.2' });
  assert.equal(one(old, 'PodDisruptionBudget').apiVersion, 'policy/v1beta1');
  assert.equal(one(old, 'HorizontalPodAutoscaler').apiVersion, 'autoscaling/v2beta2');
  const current = helmTemplate({ values, kubeVersion: '1.30.0' });
  assert.equal(one(current, 'PodDisruptionBudget').apiVersion, 'policy/v1');
  assert.equal(one(current, 'HorizontalPodAutoscaler').apiVersion, 'autoscaling/v2');
});

test('autoscaling: off by default; on, the HPA owns the replica count', () => {
  none(helmTemplate(), 'HorizontalPodAutoscaler');
  const objs = helmTemplate({ values: { autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 6 } } });
  const hpa = one(objs, 'HorizontalPodAutoscaler');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: RELEASE });
  assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [3, 6]);
  assert.equal(one(objs, 'Deployment').spec.replicas, undefined, 'no replicas for a rollout to reset');
});

test('ServiceMonitor: only when enabled and the cluster serves monitoring.coreos.com/v1', () => {
  const monitoring = ['monitoring.coreos.com/v1'];
  none(helmTemplate({ values: { serviceMonitor: { enabled: true } } }), 'ServiceMonitor');
  none(helmTemplate({ apiVersions: monitoring }), 'ServiceMonitor');
  const objs = helmTemplate({ values: { serviceMonitor: { enabled: true, labels: { release: 'prom' } } }, apiVersions: monitoring });
  const sm = one(objs, 'ServiceMonitor');
  assert.equal(sm.metadata.labels?.release, 'prom');
  const svc = one(objs, 'Service');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], v, `Service label ${k}`);
  assert.deepEqual(sm.spec.endpoints, [{ port: 'metrics', path: '/metrics', scheme: 'http', interval: '30s' }]);
});

// --- engine=policy ---

test('engine=policy renders the `realip-webhook policy` objects for labelPrefix, with Helm labels, and nothing of the webhook', () => {
  for (const labelPrefix of ['realip.io', 'example.com']) {
    const objs = helmTemplate({ values: { engine: 'policy', labelPrefix }, kubeVersion: POLICY_KUBE_VERSION });
    for (const o of objs) {
      assert.deepEqual(HELM_STANDARD_LABELS.map((l) => o.metadata.labels?.[l]), [RELEASE, '0.1.0', 'Helm', 'realip-webhook-0.1.0'], `${o.kind}/${o.metadata.name}`);
    }
    const withoutLabels = objs.map(({ metadata: { labels: _, ...metadata }, ...rest }) => ({ ...rest, metadata }));
    // Helm sorts the objects its own way.
    const byId = (list: Any[]) => [...list].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    assert.deepEqual(byId(withoutLabels), byId(generatePolicies(labelPrefix)), `labelPrefix ${labelPrefix}`);
  }
});

test('engine=policy is refused before Kubernetes 1.36, saying why and what to use', () => {
  const r = helmTemplateRun({ values: { engine: 'policy' }, kubeVersion: '1.35.4' });
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /engine=policy needs Kubernetes 1\.36 or newer, where MutatingAdmissionPolicy is GA; this cluster is v1\.35\.4: use engine=webhook/);
});
