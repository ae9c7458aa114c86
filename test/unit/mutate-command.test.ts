// mutateManifests(), the pure part of `realip-webhook mutate`: multi-document YAML, List objects,
// JSON, -o patch, bad documents (exit 2 via ConfigError, naming the index), and that every change
// is exactly what mutate() decides for the webhook.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { mutateManifests, parseLabelList, type MutateManifestsOptions } from '../../src/commands/mutate-manifests.js';
import { ConfigError } from '../../src/config.js';
import { mutate } from '../../src/mutation/mutate.js';
import * as fx from '../fixtures/objects.js';
import { applyStrict } from '../support/patch.js';

type Json = Record<string, any>;
const OPTED_IN = { 'realip.io/inject': 'enabled' };
const TPROXY = 'sidecar.istio.io/interceptionMode';
const run = (text: string, options: Partial<MutateManifestsOptions> = {}) =>
  mutateManifests(text, { labelPrefix: 'realip.io', namespaceLabels: OPTED_IN, ...options });
const docsOf = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS() as Json);

const SERVICE_YAML = `# The app's public entry
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  type: LoadBalancer   # public
  selector: {app: web}
  ports:
  - port: 80
`;
const CONFIGMAP_YAML = `---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: demo}
data:
    key:   "value"   # odd spacing is kept
`;
const DEPLOYMENT_YAML = `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx   # pinned later
`;
const MULTI = SERVICE_YAML + CONFIGMAP_YAML + DEPLOYMENT_YAML;

/** What the webhook itself would produce for this object on CREATE. */
function webhookResult(object: Json, labels: Record<string, string> = OPTED_IN): Json {
  const group = object['apiVersion'].includes('/') ? object['apiVersion'].split('/')[0] : '';
  const { ops } = mutate({ kind: { group, kind: object['kind'] }, operation: 'CREATE', object, namespaceLabels: labels, labelPrefix: 'realip.io' });
  return applyStrict(object, ops);
}

function assertConfigError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError (exit 2), got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('multi-document YAML', () => {
  test('every document, in order, is what the webhook would make of it', () => {
    const { stdout } = run(MULTI);
    const input = docsOf(MULTI);
    const output = docsOf(stdout);
    assert.equal(output.length, 3);
    input.forEach((doc, i) => assert.deepEqual(output[i], webhookResult(doc), `document ${i}`));
    assert.equal(output[0]!['spec'].externalTrafficPolicy, 'Local');
    assert.equal(output[2]!['spec'].template.metadata.annotations[TPROXY], 'TPROXY');
  });

  test('an untouched document is written back byte for byte; changed ones keep their comments', () => {
    const { stdout } = run(MULTI);
    assert.ok(stdout.includes(CONFIGMAP_YAML), `ConfigMap unchanged:\n${stdout}`);
    assert.ok(stdout.startsWith("# The app's public entry\n"), 'leading comment kept');
    assert.match(stdout, /type: LoadBalancer # public/);
    assert.match(stdout, /image: nginx # pinned later/);
    // Style read from the source: kubectl-style sequences and unpadded flow maps stay as written.
    assert.match(stdout, /\n  ports:\n  - port: 80\n/);
    assert.match(stdout, /matchLabels: \{app: web\}/);
  });

  test('a summary per changed object and every warning go to stderr, not stdout', () => {
    const { stdout, stderr } = run(MULTI);
    assert.deepEqual(
      stderr.filter((l) => l.startsWith('mutated ')),
      ['mutated Service demo/web: external-traffic-policy=Local', 'mutated Deployment demo/web: anti-affinity=preferred/hostname, istio-interception=TPROXY'],
    );
    assert.equal(stderr.filter((l) => l.startsWith('Warning: realip-webhook: ')).length, 3);
    assert.ok(!stdout.includes('Warning'));
  });

  test('the output mutated again changes nothing and is written back unchanged (idempotent)', () => {
    const once = run(MULTI).stdout;
    const twice = run(once);
    assert.equal(twice.stdout, once);
    assert.deepEqual(twice.stderr.filter((l) => l.startsWith('mutated ')), []);
  });

  test('empty documents and a trailing --- are kept', () => {
    const text = `---\n${CONFIGMAP_YAML}---\n`;
    assert.equal(run(text).stdout, text);
  });

  test('a change under an alias is written anew, and does not leak to the anchored node', () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, annotations: &ann {team: a}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: *ann}
    spec: {containers: [{name: web, image: nginx}]}
`;
    const [output] = docsOf(run(text).stdout);
    assert.deepEqual(output!['spec'].template.metadata.annotations, { team: 'a', [TPROXY]: 'TPROXY' });
    assert.deepEqual(output!['metadata'].annotations, { team: 'a' });
    assert.ok(output!['spec'].template.spec.affinity.podAntiAffinity);
  });
});

describe('namespaces', () => {
  const namespaces = new Map<string, Record<string, string>>([
    ['demo', OPTED_IN],
    ['default', { ...OPTED_IN, 'realip.io/istio-interception': 'none' }],
    ['restricted', { ...OPTED_IN, 'pod-security.kubernetes.io/enforce': 'restricted' }],
  ]);
  const deploymentIn = (namespace?: string) => {
    const d = fx.deployment();
    if (namespace === undefined) delete d['metadata'].namespace;
    else d['metadata'].namespace = namespace;
    return stringify(d);
  };

  test('--namespaces-file labels are looked up by metadata.namespace', () => {
    const [out] = docsOf(run(deploymentIn('demo'), { namespaceLabels: undefined, namespaces }).stdout);
    assert.equal(out!['spec'].template.metadata.annotations[TPROXY], 'TPROXY');
  });

  test('an object without metadata.namespace is looked up as "default"', () => {
    const [out] = docsOf(run(deploymentIn(undefined), { namespaceLabels: undefined, namespaces }).stdout);
    assert.ok(out!['spec'].template.spec.affinity, 'anti-affinity applied (default is opted in)');
    assert.equal(out!['spec'].template.metadata.annotations?.[TPROXY], undefined, 'default says istio-interception=none');
  });

  test('a namespace that is not listed is not opted in: output unchanged, with a hint', () => {
    const text = deploymentIn('elsewhere');
    const { stdout, stderr } = run(text, { namespaceLabels: undefined, namespaces });
    assert.equal(stdout, text);
    assert.ok(stderr.some((l) => /no Service or workload is in an opted-in namespace/.test(l)), stderr.join('\n'));
  });

  test('a Namespace object in the input opts its namespace in, even after the objects', () => {
    const text = `${deploymentIn('team-a')}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels: {realip.io/inject: enabled}\n`;
    const [deploymentOut, namespaceOut] = docsOf(run(text, { namespaceLabels: undefined }).stdout);
    assert.equal(deploymentOut!['spec'].template.metadata.annotations[TPROXY], 'TPROXY');
    assert.equal(namespaceOut!['kind'], 'Namespace');
  });

  test('warnings of the webhook reach stderr (pod-security restricted skips TPROXY)', () => {
    const { stderr } = run(deploymentIn('restricted'), { namespaceLabels: undefined, namespaces });
    assert.ok(stderr.some((l) => /^Warning: realip-webhook: TPROXY not set: namespace enforces pod-security restricted.*\(Deployment restricted\/source-ip-app\)$/.test(l)), stderr.join('\n'));
  });

  test('--label-prefix is honoured', () => {
    const [out] = docsOf(run(stringify(fx.service('NodePort')), { namespaceLabels: { 'ip.example.com/inject': 'enabled' }, labelPrefix: 'ip.example.com' }).stdout);
    assert.equal(out!['spec'].externalTrafficPolicy, 'Local');
  });
});

describe('List objects', () => {
  const list = { apiVersion: 'v1', kind: 'List', metadata: {}, items: [fx.service('NodePort'), fx.service('ClusterIP'), fx.deployment()] };

  test('each item is mutated and the List is kept', () => {
    const [out] = docsOf(run(stringify(list)).stdout);
    assert.equal(out!['kind'], 'List');
    assert.equal(out!['items'].length, 3);
    list.items.forEach((item, i) => assert.deepEqual(out!['items'][i], webhookResult(item), `item ${i}`));
  });

  test('-o patch names document and item of each object, and each patch applies to its item', () => {
    const entries = JSON.parse(run(stringify(list), { output: 'patch' }).stdout) as Json[];
    assert.deepEqual(entries.map((e) => [e['document'], e['item'], e['kind'], e['namespace'], e['name']]), [
      [0, 0, 'Service', 'demo', 'source-ip-app'],
      [0, 1, 'Service', 'demo', 'source-ip-app'],
      [0, 2, 'Deployment', 'demo', 'source-ip-app'],
    ]);
    assert.deepEqual(entries[1]!['patch'], [], 'ClusterIP: nothing to change');
    entries.forEach((e, i) => assert.deepEqual(applyStrict(list.items[i], e['patch']), webhookResult(list.items[i]!)));
  });
});

describe('JSON', () => {
  test('JSON input gives JSON output by default', () => {
    const object = fx.service('NodePort');
    const { stdout } = run(JSON.stringify(object, null, 2));
    assert.deepEqual(JSON.parse(stdout), webhookResult(object));
  });

  test('several documents in -o json become one v1 List, in order', () => {
    const out = JSON.parse(run(MULTI, { output: 'json' }).stdout) as Json;
    assert.equal(out['apiVersion'], 'v1');
    assert.equal(out['kind'], 'List');
    assert.deepEqual(out['items'].map((o: Json) => o['kind']), ['Service', 'ConfigMap', 'Deployment']);
    assert.deepEqual(out['items'][2], webhookResult(docsOf(MULTI)[2]!));
  });

  test('-o yaml renders JSON input as YAML', () => {
    const object = fx.deployment();
    const out = parse(run(JSON.stringify(object), { output: 'yaml' }).stdout) as Json;
    assert.deepEqual(out, webhookResult(object));
  });
});

describe('-o patch', () => {
  test('one entry per object with its JSON patch, empty for untouched objects', () => {
    const entries = JSON.parse(run(MULTI, { output: 'patch' }).stdout) as Json[];
    assert.deepEqual(entries.map((e) => [e['document'], e['kind'], e['patch'].length > 0]), [
      [0, 'Service', true],
      [1, 'ConfigMap', false],
      [2, 'Deployment', true],
    ]);
    assert.deepEqual(entries[0]!['patch'], [{ op: 'add', path: '/spec/externalTrafficPolicy', value: 'Local' }]);
    assert.equal(entries[0]!['item'], undefined);
  });
});

describe('bad documents: ConfigError (exit 2) naming the document index and the problem', () => {
  const cases: [string, string, RegExp][] = [
    ['YAML syntax error', `${SERVICE_YAML}---\nkind: [Service\n`, /^document 1: not valid YAML or JSON: /],
    ['a scalar document', `${SERVICE_YAML}---\njust a string\n`, /^document 1: expected a Kubernetes object .*got string/],
    ['a top-level sequence', `- a\n- b\n`, /^document 0: expected a Kubernetes object .*got array/],
    ['no kind', `${SERVICE_YAML}${CONFIGMAP_YAML}---\napiVersion: v1\nmetadata: {name: x}\n`, /^document 2: apiVersion and kind must be non-empty strings, got apiVersion "v1" and kind undefined/],
    ['spec.template a string', `${SERVICE_YAML}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {template: oops}\n`, /^document 1 \(Deployment\): \.spec\.template must be an object, got string/],
    ['annotations not strings', `apiVersion: v1\nkind: Service\nmetadata:\n  name: w\n  annotations: {a: 1}\n`, /^document 0 \(Service\): \.metadata\.annotations must be a map of strings/],
    ['a bad List item', `apiVersion: v1\nkind: List\nitems:\n- ${JSON.stringify(fx.service('NodePort'))}\n- 42\n`, /^document 0 item 1: expected a Kubernetes object .*got number/],
    ['an ill-typed List item', `apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, spec: {type: 3}}\n`, /^document 0 item 0 \(Service\): \.spec\.type must be a string, got number/],
  ];
  for (const [name, text, pattern] of cases) {
    test(name, () => assertConfigError(() => run(text), pattern));
  }
});

describe('--namespace-labels parsing', () => {
  test('key=value pairs separated by commas', () => {
    assert.deepEqual(parseLabelList('--namespace-labels', 'realip.io/inject=enabled, realip.io/anti-affinity=required'), {
      'realip.io/inject': 'enabled',
      'realip.io/anti-affinity': 'required',
    });
  });

  test('an entry without = is named in the error', () => {
    assertConfigError(() => parseLabelList('--namespace-labels', 'realip.io/inject=enabled,oops'), /--namespace-labels .*"oops" is not key=value/);
  });
});
