// `realip-webhook explain` against a real kube-apiserver (test/e2e/cluster.ts), on scenarios built
// with kubectl as a user would: Nodes, ReplicaSets, Pods and EndpointSlices are written as
// objects (no scheduler, controllers or kubelet run here). One scenario per hop verdict; each
// asserts the hops' verdicts and the exit status.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { atLeast } from '../kubernetes/release.js';
import { startCluster, type Cluster } from './cluster.js';
import { nodeManifest } from './node-manifest.js';
import { ROOT, type Obj } from './webhook-harness.js';

let cluster: Cluster;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], kubeconfig = cluster.kubeconfig): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env['PATH'], HOME: cluster.dir };
    execFile(process.execPath, [join(ROOT, 'dist', 'cli.js'), ...args, '--kubeconfig', kubeconfig], { cwd: ROOT, env, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** explain -o json: the report, the verdict of each hop by name, and the exit status. */
async function explain(ns: string, name: string, kubeconfig?: string) {
  const run = await cli(['explain', 'service', name, '-n', ns, '-o', 'json'], kubeconfig);
  assert.ok(run.code === 0 || run.code === 1, `exit 0 or 1, got ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, '', 'nothing on stderr');
  const report = JSON.parse(run.stdout) as Obj;
  const verdicts = Object.fromEntries((report['hops'] as Obj[]).map((h) => [h['hop'], h['verdict']]));
  const hop = (name: string) => (report['hops'] as Obj[]).find((h) => h['hop'] === name)!;
  return { code: run.code, report, verdicts, hop, evidence: (name: string) => (hop(name)['evidence'] as string[]).join('\n') };
}

const apply = (yaml: string) => cluster.kubectl(['apply', '-f', '-'], { stdin: yaml });
const uid = async (kind: string, ns: string, name: string) =>
  (await cluster.kubectl(['get', kind, name, '-n', ns, '-o', 'jsonpath={.metadata.uid}'])).stdout;

function service(ns: string, name: string, type: string, extra: { policy?: string; annotations?: Record<string, string>; labels?: Record<string, string>; selector?: Record<string, string> | null } = {}): string {
  const selector = extra.selector === null ? '' : `  selector: ${JSON.stringify(extra.selector ?? { app: name })}\n`;
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}, annotations: ${JSON.stringify(extra.annotations ?? {})}, labels: ${JSON.stringify(extra.labels ?? {})}}
spec:
  type: ${type}
${selector}${extra.policy ? `  externalTrafficPolicy: ${extra.policy}\n` : ''}  ports: [{port: 80, targetPort: 8080}]
---
`;
}

function deployment(ns: string, name: string, labels: Record<string, string>, args: string[] = []): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {matchLabels: ${JSON.stringify(labels)}}
  template:
    metadata: {labels: ${JSON.stringify(labels)}}
    spec:
      containers: [{name: app, image: registry.k8s.io/echoserver:1.4, args: ${JSON.stringify(args)}}]
---
`;
}

type Sidecar = 'REDIRECT' | 'TPROXY' | 'native TPROXY';

/**
 * A Deployment's ReplicaSet and Pods as the controllers and the scheduler would leave them,
 * with an EndpointSlice naming each Pod and its node, as the endpoint-slice controller would.
 */
async function replicas(ns: string, name: string, o: { service?: string; labels?: Record<string, string>; nodes: string[]; sidecar?: Sidecar }): Promise<void> {
  const labels = o.labels ?? { app: name };
  const rs = `${name}-5d8f7c`;
  await apply(`apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: ${rs}
  namespace: ${ns}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: ${name}, uid: ${await uid('deployment', ns, name)}, controller: true}]
spec:
  selector: {matchLabels: ${JSON.stringify(labels)}}
  template:
    metadata: {labels: ${JSON.stringify(labels)}}
    spec:
      containers: [{name: app, image: registry.k8s.io/echoserver:1.4}]
`);
  const rsUid = await uid('replicaset', ns, rs);
  const proxy = o.sidecar
    ? { name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.29.0', env: [{ name: 'ISTIO_META_INTERCEPTION_MODE', value: o.sidecar.replace('native ', '') }] }
    : undefined;
  const native = o.sidecar?.startsWith('native');
  const pods = o.nodes.map((node, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${rs}-${i}`, namespace: ns, labels, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid: rsUid, controller: true }] },
    spec: {
      nodeName: node,
      containers: [{ name: 'app', image: 'registry.k8s.io/echoserver:1.4' }, ...(proxy && !native ? [proxy] : [])],
      ...(proxy && native ? { initContainers: [{ ...proxy, restartPolicy: 'Always' }] } : {}),
    },
  }));
  await apply(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }));
  await apply(endpointSlice(ns, o.service ?? name, o.nodes.map((node, i) => ({ node, pod: `${rs}-${i}` }))));
}

/** discovery.k8s.io/v1 names the node; Kubernetes 1.20 serves v1beta1, which names it in topology. */
function endpointSlice(ns: string, serviceName: string, endpoints: { node: string; pod?: string }[], sliceName = `${serviceName}-abcde`): string {
  const v1 = atLeast('1.21');
  return JSON.stringify({
    apiVersion: v1 ? 'discovery.k8s.io/v1' : 'discovery.k8s.io/v1beta1',
    kind: 'EndpointSlice',
    metadata: { name: sliceName, namespace: ns, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    ports: [{ name: '', port: 8080, protocol: 'TCP' }],
    endpoints: endpoints.map((e, i) => ({
      addresses: [`10.244.${i}.${10 + i}`],
      conditions: { ready: true },
      ...(v1 ? { nodeName: e.node } : { topology: { 'kubernetes.io/hostname': e.node } }),
      ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod, namespace: ns } } : {}),
    })),
  });
}

/** The admin's kubeconfig, impersonating `user` (as kubectl --as does), who has only the RBAC given to it. */
async function kubeconfigAs(user: string): Promise<string> {
  const config = JSON.parse(await readFile(cluster.kubeconfig, 'utf8')) as Obj;
  config['users'][0].user.as = user;
  const path = join(cluster.dir, `${user}.kubeconfig`);
  await writeFile(path, JSON.stringify(config), { mode: 0o600 });
  return path;
}

const GATEWAY_CRDS = ['gatewayclasses', 'gateways', 'httproutes'];

/** The standard-channel CRDs of the Gateway API release test/gateway-api/go.mod pins, from Go's module cache. */
async function gatewayApiCrds(): Promise<string> {
  const dir = await new Promise<string>((resolve, reject) => {
    execFile('go', ['mod', 'download', '-json', 'sigs.k8s.io/gateway-api'], {
      cwd: join(ROOT, 'test', 'gateway-api'),
      env: { ...process.env, GOMODCACHE: '/var/cache/realip-webhook/go/mod', GOFLAGS: '-mod=readonly' },
      encoding: 'utf8',
    }, (err, stdout, stderr) => (err ? reject(new Error(`go mod download sigs.k8s.io/gateway-api (test/gateway-api): ${stderr || err.message}`)) : resolve((JSON.parse(stdout) as { Dir: string }).Dir)));
  });
  const files = await Promise.all(GATEWAY_CRDS.map((c) => readFile(join(dir, 'config', 'crd', 'standard', `gateway.networking.k8s.io_${c}.yaml`), 'utf8')));
  return files.join('\n---\n');
}

const NGINX_LABELS = { 'app.kubernetes.io/name': 'ingress-nginx', 'app.kubernetes.io/instance': 'ingress-nginx', 'app.kubernetes.io/component': 'controller' };
const labelList = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`);

before(async () => {
  cluster = await startCluster();
  await apply(nodeManifest('node-a', 'True', 'zone-1') + nodeManifest('node-b', 'True', 'zone-2'));
  for (const ns of ['plain', 'late', 'shop', 'baseline', 'ingress-nginx']) await cluster.kubectl(['create', 'namespace', ns]);
  await cluster.kubectl(['label', 'namespace', 'shop', 'realip.io/inject=enabled']);
  await cluster.kubectl(['label', 'namespace', 'baseline', 'realip.io/inject=enabled', 'pod-security.kubernetes.io/enforce=baseline']);

  // Not opted in: Cluster, the default.
  await apply(service('plain', 'web', 'LoadBalancer') + deployment('plain', 'web', { app: 'web' }));
  await replicas('plain', 'web', { nodes: ['node-a', 'node-b'] });

  // The namespace is labelled after the Service was created.
  await apply(service('late', 'web', 'LoadBalancer') + deployment('late', 'web', { app: 'web' }));
  await replicas('late', 'web', { nodes: ['node-a', 'node-b'] });
  await cluster.kubectl(['label', 'namespace', 'late', 'realip.io/inject=enabled']);

  // Opted in, Local as the webhook writes it.
  await apply(
    service('shop', 'piled', 'LoadBalancer', { policy: 'Local' }) + deployment('shop', 'piled', { app: 'piled' }) +
    service('shop', 'redirect', 'LoadBalancer', { policy: 'Local' }) + deployment('shop', 'redirect', { app: 'redirect' }) +
    service('shop', 'tproxy', 'LoadBalancer', { policy: 'Local' }) + deployment('shop', 'tproxy', { app: 'tproxy' }) +
    service('shop', 'nlb', 'LoadBalancer', { annotations: { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' } }) +
    service('shop', 'manual', 'LoadBalancer', { policy: 'Local', selector: null }) +
    service('shop', 'api', 'ClusterIP') + deployment('shop', 'api', { app: 'api' }) +
    service('baseline', 'web', 'LoadBalancer', { policy: 'Local' }) + deployment('baseline', 'web', { app: 'web' }),
  );
  await replicas('shop', 'piled', { nodes: ['node-a', 'node-a'] });
  await replicas('shop', 'redirect', { nodes: ['node-a', 'node-b'], sidecar: 'REDIRECT' });
  // Native sidecars (an init container with restartPolicy Always) from Kubernetes 1.29 on.
  await replicas('shop', 'tproxy', { nodes: ['node-a', 'node-b'], sidecar: atLeast('1.29') ? 'native TPROXY' : 'TPROXY' });
  await replicas('shop', 'api', { nodes: ['node-a', 'node-b'] });
  await apply(endpointSlice('shop', 'nlb', [{ node: 'node-a' }, { node: 'node-b' }]));
  await apply(endpointSlice('shop', 'manual', [{ node: 'node-a' }]));
  await replicas('baseline', 'web', { nodes: ['node-a', 'node-b'], sidecar: 'REDIRECT' });

  // An ingress-nginx-like controller: Deployment, Service, ConfigMap and IngressClass as its Helm chart labels them.
  await apply(
    service('ingress-nginx', 'ingress-nginx-controller', 'LoadBalancer', { policy: 'Local', labels: NGINX_LABELS, selector: NGINX_LABELS }) +
    deployment('ingress-nginx', 'ingress-nginx-controller', NGINX_LABELS, ['/nginx-ingress-controller', '--configmap=$(POD_NAMESPACE)/ingress-nginx-controller']) +
    `apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx, labels: ${JSON.stringify(NGINX_LABELS)}}
data: {allow-snippet-annotations: "false"}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx, labels: ${JSON.stringify(NGINX_LABELS)}}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: other}
spec: {controller: example.com/other-ingress}
---
`,
  );
  await replicas('ingress-nginx', 'ingress-nginx-controller', { labels: NGINX_LABELS, nodes: ['node-a', 'node-b'] });
  await cluster.kubectl(['create', 'ingress', 'api', '-n', 'shop', '--class', 'nginx', '--rule', 'shop.example.com/*=api:80']);
});

after(async () => {
  await cluster?.stop();
});

describe('realip-webhook explain (real kube-apiserver)', { timeout: 180_000 }, () => {
  test('not opted in: L4 lost (Cluster, no opt-in label), a node IP, exit 1', async () => {
    const r = await explain('plain', 'web');
    assert.deepEqual(r.verdicts, { entry: 'kept', L4: 'lost', spread: 'kept', 'in the pod': 'kept' });
    assert.equal(r.code, 1);
    assert.match(r.evidence('L4'), /namespace has no label realip\.io\/inject/);
    assert.equal(r.hop('L4')['fix'], 'kubectl label namespace plain realip.io/inject=enabled --overwrite && realip-webhook audit -n plain --fix services');
    assert.match(r.report['verdict'], /^The app sees a node IP: lost at L4/);
  });

  test('labelled after the Service was created: created before the opt-in; audit --fix services makes it kept, exit 0', async () => {
    const before = await explain('late', 'web');
    assert.equal(before.verdicts['L4'], 'lost');
    assert.match(before.evidence('L4'), /created before the opt-in/);
    assert.equal(before.hop('L4')['fix'], 'realip-webhook audit -n late --fix services');
    const fixed = await cli(['audit', '-n', 'late', '--fix', 'services', '-o', 'json']);
    assert.equal(fixed.code, 1, 'the Deployment still drifts; the Service is fixed');
    const after = await explain('late', 'web');
    assert.deepEqual(after.verdicts, { entry: 'kept', L4: 'kept', spread: 'kept', 'in the pod': 'kept' });
    assert.equal(after.report['verdict'], 'The app sees the client IP.');
    assert.equal(after.code, 0);
  });

  test('every replica on one node under Local: spread at risk, names the Deployment and the restart, exit 1', async () => {
    const r = await explain('shop', 'piled');
    assert.deepEqual(r.verdicts, { entry: 'kept', L4: 'kept', spread: 'at risk', 'in the pod': 'kept' });
    assert.match(r.evidence('spread'), /every ready endpoint is on node node-a: the load balancer has one backend, the other 1 node\(s\) fail its health check/);
    assert.match(r.evidence('spread'), /workload deployment\/piled has no pod anti-affinity; the webhook would add it today/);
    assert.equal(r.hop('spread')['fix'], 'kubectl rollout restart deployment/piled -n shop');
    assert.match(r.evidence('L4'), /healthCheckNodePort \d+/);
    assert.match(r.report['verdict'], /^The app sees the client IP, at risk at spread/);
    assert.equal(r.code, 1);
  });

  test('istio-proxy in REDIRECT: in the pod lost, 127.0.0.6; in TPROXY: every hop kept, exit 0', async () => {
    const redirect = await explain('shop', 'redirect');
    assert.deepEqual(redirect.verdicts, { entry: 'kept', L4: 'kept', spread: 'kept', 'in the pod': 'lost' });
    assert.match(redirect.evidence('in the pod'), /istio-proxy sidecar container, interception REDIRECT \(istio-proxy env ISTIO_META_INTERCEPTION_MODE\)/);
    assert.equal(redirect.hop('in the pod')['fix'], 'kubectl rollout restart deployment/redirect -n shop');
    assert.match(redirect.report['verdict'], /^The app sees 127\.0\.0\.6: lost at in the pod/);
    assert.equal(redirect.code, 1);

    const tproxy = await explain('shop', 'tproxy');
    assert.deepEqual(tproxy.verdicts, { entry: 'kept', L4: 'kept', spread: 'kept', 'in the pod': 'kept' });
    assert.match(tproxy.evidence('in the pod'), atLeast('1.29') ? /native sidecar \(init container\), interception TPROXY/ : /sidecar container, interception TPROXY/);
    assert.equal(tproxy.code, 0);
  });

  test('REDIRECT under Pod Security baseline: the level is why TPROXY was skipped', async () => {
    const r = await explain('baseline', 'web');
    assert.equal(r.verdicts['in the pod'], 'lost');
    assert.match(r.evidence('in the pod'), /Pod Security enforce level: baseline; Istio ambient: no/);
    assert.match(r.evidence('in the pod'), /namespace enforces pod-security baseline: TPROXY needs NET_ADMIN/);
  });

  test('AWS NLB ip targets: the policy does not matter, the pod sees the NLB without preserve_client_ip', async () => {
    const r = await explain('shop', 'nlb');
    assert.equal(r.verdicts['L4'], 'lost');
    assert.match(r.evidence('L4'), /AWS NLB: service\.beta\.kubernetes\.io\/aws-load-balancer-nlb-target-type=ip \(direct-to-pod\)/);
    assert.match(r.evidence('L4'), /externalTrafficPolicy Cluster does not matter/);
    assert.match(r.report['verdict'], /^The app sees the load balancer's own IP/);
  });

  test('behind ingress-nginx: every hop kept to the controller, L7 from its ConfigMap; PROXY protocol mismatch flagged', async () => {
    const r = await explain('shop', 'api');
    assert.deepEqual(r.verdicts, { entry: 'kept', L4: 'kept', spread: 'kept', 'in the pod': 'kept', L7: 'kept' });
    assert.match(r.evidence('entry'), /Ingress shop\/api sends to it \(IngressClass nginx, controller k8s\.io\/ingress-nginx\)/);
    assert.match(r.evidence('entry'), /the controller's own Service is ingress-nginx\/ingress-nginx-controller/);
    assert.match(r.evidence('L7'), /ConfigMap ingress-nginx\/ingress-nginx-controller: use-proxy-protocol=\(unset\)/);
    assert.equal(r.report['verdict'], "The app sees the ingress controller's pod IP, with the client IP in X-Forwarded-For.");
    assert.equal(r.code, 0);

    await cluster.kubectl(['patch', 'configmap', 'ingress-nginx-controller', '-n', 'ingress-nginx', '--type', 'merge', '-p', '{"data":{"use-proxy-protocol":"true"}}']);
    const risky = await explain('shop', 'api');
    assert.equal(risky.verdicts['L7'], 'at risk');
    assert.equal(risky.code, 1);
    await cluster.kubectl(['patch', 'configmap', 'ingress-nginx-controller', '-n', 'ingress-nginx', '--type', 'merge', '-p', '{"data":{"use-proxy-protocol":"false"}}']);
  });

  // Gateway API's CRDs validate with CEL (x-kubernetes-validations), which Kubernetes 1.20 lacks.
  test('an HTTPRoute through a Gateway: the Service labelled with the Gateway name is L4; L7 of its controller unknown', { skip: !atLeast('1.25') && 'Gateway API v1.4 CRDs need Kubernetes 1.25+ (CEL validation); this release is older' }, async () => {
    await apply(await gatewayApiCrds());
    await cluster.kubectl(['wait', '--for', 'condition=established', '--timeout', '60s', ...GATEWAY_CRDS.map((c) => `crd/${c}.gateway.networking.k8s.io`)]);
    await cluster.kubectl(['create', 'namespace', 'gateway']);
    await apply(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: istio}
spec: {controllerName: istio.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: gateway}
spec:
  gatewayClassName: istio
  listeners: [{name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend, namespace: shop}
spec:
  parentRefs: [{name: edge, namespace: gateway}]
  rules: [{backendRefs: [{name: gw-backend, port: 80}]}]
---
${service('gateway', 'edge-istio', 'LoadBalancer', { policy: 'Local', labels: { 'gateway.networking.k8s.io/gateway-name': 'edge' } })}
${deployment('gateway', 'edge-istio', { app: 'edge-istio' })}
${service('shop', 'gw-backend', 'ClusterIP', { selector: { app: 'tproxy' } })}`);
    await replicas('gateway', 'edge-istio', { nodes: ['node-a', 'node-b'] });
    await apply(endpointSlice('shop', 'gw-backend', [{ node: 'node-a', pod: 'tproxy-5d8f7c-0' }, { node: 'node-b', pod: 'tproxy-5d8f7c-1' }]));

    const r = await explain('shop', 'gw-backend');
    assert.deepEqual(r.verdicts, { entry: 'kept', L4: 'kept', spread: 'kept', 'in the pod': 'kept', L7: 'unknown' });
    assert.match(r.evidence('entry'), /HTTPRoute shop\/backend sends to it through Gateway gateway\/edge \(class istio, controller istio\.io\/gateway-controller\)/);
    assert.match(r.evidence('entry'), /the controller's own Service is gateway\/edge-istio/);
    assert.match(r.report['verdict'], /^Cannot tell what the app sees: L7 is unknown \(controller istio\.io\/gateway-controller: explain reads the configuration of k8s\.io\/ingress-nginx only\)/);
    assert.equal(r.code, 1);
  });

  test('an Ingress of a class whose controller Service cannot be told: unknown, not a guess', async () => {
    await cluster.kubectl(['create', 'ingress', 'other', '-n', 'shop', '--class', 'other', '--rule', 'other.example.com/*=tproxy-internal:80']);
    await apply(service('shop', 'tproxy-internal', 'ClusterIP', { selector: { app: 'tproxy' } }));
    const r = await explain('shop', 'tproxy-internal');
    assert.equal(r.verdicts['entry'], 'unknown');
    assert.match(r.evidence('entry'), /IngressClass other carries none of the labels app\.kubernetes\.io\/name, app\.kubernetes\.io\/instance/);
    assert.equal(r.verdicts['L7'], 'unknown');
    assert.match(r.report['verdict'], /^Cannot tell what the app sees: entry is unknown/);
  });

  test('a Service without a selector and a hand-written EndpointSlice: spread read, in the pod unknown, one clear line', async () => {
    const r = await explain('shop', 'manual');
    assert.equal(r.verdicts['spread'], 'at risk');
    assert.equal(r.verdicts['in the pod'], 'unknown');
    assert.match(r.evidence('in the pod'), /no ready endpoint names a Pod: a Service without a selector/);
    assert.equal(r.code, 1);
  });

  test('-o table: one row per hop, the fix, the verdict last', async () => {
    const r = await cli(['explain', 'service', 'web', '-n', 'plain', '-o', 'table']);
    assert.equal(r.code, 1);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^HOP +VERDICT +EVIDENCE$/);
    assert.ok(lines.some((l) => /^L4 +lost +Service plain\/web: type LoadBalancer, externalTrafficPolicy Cluster$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^ +fix: kubectl label namespace plain realip\.io\/inject=enabled/.test(l)), r.stdout);
    assert.match(lines.at(-1)!, /^The app sees a node IP/);
  });

  test('bad input: a missing Service is one line and exit 2; bad flags exit 2', async () => {
    const missing = await cli(['explain', 'service', 'nope', '-n', 'shop']);
    assert.deepEqual([missing.code, missing.stdout, missing.stderr], [2, '', 'realip-webhook: service shop/nope not found\n']);
    assert.equal((await cli(['explain', 'service', 'web'])).code, 2, 'no -n');
    assert.equal((await cli(['explain', 'deployment', 'web', '-n', 'shop'])).code, 2);
    assert.equal((await cli(['explain', 'service', 'web', '-n', 'shop', '-o', 'yaml'])).code, 2);
  });

  test('the ClusterRole of docs/explain.md is all explain needs: a user bound to it reads what the admin reads', async () => {
    const doc = await readFile(join(ROOT, 'docs', 'explain.md'), 'utf8');
    const clusterRole = /<<'YAML'\n([\s\S]*?kind: ClusterRole\n[\s\S]*?)\nYAML/.exec(doc)?.[1];
    assert.ok(clusterRole, 'docs/explain.md shows the ClusterRole');
    await apply(`${clusterRole}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: realip-explain}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: realip-explain}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: reader}]
`);
    const reader = await kubeconfigAs('reader');
    for (const [ns, name] of [['shop', 'api'], ['shop', 'redirect'], ['late', 'web']] as const) {
      const asAdmin = await explain(ns, name);
      assert.deepEqual((await explain(ns, name, reader)).report, asAdmin.report, `${ns}/${name}`);
      assert.ok(!JSON.stringify(asAdmin.report).includes('forbidden'), `${ns}/${name}`);
    }
  });

  test('a user who may read Services but not Pods, EndpointSlices or Nodes: those hops unknown (forbidden), never a crash', async () => {
    await apply(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: services-only, namespace: shop}
rules: [{apiGroups: [""], resources: [services], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: services-only, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: services-only}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: limited}]
`);
    const limited = await kubeconfigAs('limited');

    const r = await explain('shop', 'redirect', limited);
    assert.deepEqual(r.verdicts, { entry: 'kept', L4: 'kept', spread: 'unknown', 'in the pod': 'unknown' });
    assert.match(r.evidence('spread'), /unknown \(cannot list endpointslices in shop: forbidden\)/);
    assert.match(r.report['verdict'], /^Cannot tell what the app sees: spread is unknown \(cannot list endpointslices in shop: forbidden\)/);
    assert.equal(r.code, 1);
    const denied = await cli(['explain', 'service', 'web', '-n', 'plain', '-o', 'json'], limited);
    assert.deepEqual([denied.code, denied.stderr], [1, 'realip-webhook: explain: cannot get service plain/web: forbidden\n']);
  });
});
