// explain's hops as pure functions: cluster facts in, verdicts out, no server. The same hops on a
// real API server built with kubectl run in test/e2e/explain.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { EXPLAIN_RBAC } from '../../src/commands/explain-cluster.js';
import { CLOUD_ANNOTATIONS, cloudAnnotationsOf } from '../../src/explain/cloud-annotations.js';
import { entryHop, type EntryFacts } from '../../src/explain/entry.js';
import { explain, formatTable, type ExplainFacts, type ServiceFacts } from '../../src/explain/explain.js';
import { known, type Readable } from '../../src/explain/hop.js';
import { inThePodHop, sidecarOf } from '../../src/explain/in-the-pod.js';
import { l4Hop } from '../../src/explain/l4.js';
import { l7Hop, nginxConfigMapRef } from '../../src/explain/l7.js';
import type { EndpointSlice, Ingress, IngressClass, Node, Pod, Service, Workload } from '../../src/explain/objects.js';
import { spreadHop } from '../../src/explain/spread.js';

const PREFIX = 'realip.io';
const OPTED_IN = { 'realip.io/inject': 'enabled' };
const forbidden = (what: string): Readable<never> => ({ ok: false, reason: `cannot list ${what}: forbidden` });
const ns = (labels: Record<string, string> = OPTED_IN, name = 'shop') => known({ name, labels });

function service(name: string, type: string, extra: { policy?: string; annotations?: Record<string, string>; labels?: Record<string, string>; namespace?: string } = {}): Service {
  return {
    metadata: { name, namespace: extra.namespace ?? 'shop', annotations: extra.annotations, labels: extra.labels },
    spec: { type, selector: { app: name }, ...(extra.policy ? { externalTrafficPolicy: extra.policy } : {}), ...(extra.policy === 'Local' && type === 'LoadBalancer' ? { healthCheckNodePort: 31000 } : {}) },
  };
}

const slice = (...endpoints: { node?: string; pod?: string; ready?: boolean; zone?: string }[]): EndpointSlice => ({
  endpoints: endpoints.map((e, i) => ({
    addresses: [`10.1.0.${i + 1}`],
    conditions: { ready: e.ready ?? true },
    ...(e.node ? { nodeName: e.node } : {}),
    ...(e.zone ? { zone: e.zone } : {}),
    ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod } } : {}),
  })),
});
const node = (name: string, zone = 'a', ready = true): Node => ({
  metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

const deployment = (name: string, extra: { antiAffinity?: boolean; annotations?: Record<string, string> } = {}): Workload => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'shop' },
  spec: {
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name }, annotations: extra.annotations },
      spec: {
        containers: [{ name: 'app' }],
        ...(extra.antiAffinity ? { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname' } }] } } } : {}),
      },
    },
  },
});
const replicaSet = (name: string, owner: string): Workload => ({
  apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name, namespace: 'shop', ownerReferences: [{ kind: 'Deployment', name: owner, controller: true }] }, spec: {},
});
function pod(name: string, o: { rs?: string; node?: string; proxy?: 'REDIRECT' | 'TPROXY' | 'default'; native?: boolean } = {}): Pod {
  const proxy = { name: 'istio-proxy', ...(o.native ? { restartPolicy: 'Always' } : {}), env: o.proxy && o.proxy !== 'default' ? [{ name: 'ISTIO_META_INTERCEPTION_MODE', value: o.proxy }] : [] };
  return {
    metadata: { name, namespace: 'shop', ...(o.rs ? { ownerReferences: [{ kind: 'ReplicaSet', name: o.rs, controller: true }] } : {}) },
    spec: {
      nodeName: o.node,
      containers: [{ name: 'app' }, ...(o.proxy && !o.native ? [proxy] : [])],
      initContainers: o.proxy && o.native ? [proxy] : [],
    },
  };
}

test('the ClusterRole docs/explain.md shows has exactly the rules explain --help lists', () => {
  const doc = readFileSync(new URL('../../docs/explain.md', import.meta.url), 'utf8');
  const yaml = /<<'YAML'\n([\s\S]*?kind: ClusterRole\n[\s\S]*?)\nYAML/.exec(doc)?.[1];
  assert.deepEqual((parse(yaml!) as { rules: unknown }).rules, EXPLAIN_RBAC);
});

describe('entry', () => {
  const base = (svc: Service, o: Partial<EntryFacts> = {}): EntryFacts => ({
    service: svc, ingresses: known([]), ingressClasses: known([]), httpRoutes: undefined, gateways: undefined, gatewayClasses: undefined, services: known([]), ...o,
  });
  const nginxClass: IngressClass = {
    metadata: { name: 'nginx', labels: { 'app.kubernetes.io/name': 'ingress-nginx', 'app.kubernetes.io/instance': 'ingress-nginx' } },
    spec: { controller: 'k8s.io/ingress-nginx' },
  };
  const controllerSvc = service('ingress-nginx-controller', 'LoadBalancer', { namespace: 'ingress-nginx', labels: { 'app.kubernetes.io/name': 'ingress-nginx', 'app.kubernetes.io/instance': 'ingress-nginx' } });
  const ingress: Ingress = { metadata: { name: 'web', namespace: 'shop' }, spec: { ingressClassName: 'nginx', rules: [{ http: { paths: [{ backend: { service: { name: 'web' } } }] } }] } };

  test('a LoadBalancer Service is its own L4 entry', () => {
    const { hop, entry } = entryHop(base(service('web', 'LoadBalancer')));
    assert.equal(hop.verdict, 'kept');
    assert.equal(entry.path, 'direct');
  });

  test('a ClusterIP Service nothing exposes: in-cluster clients only', () => {
    const { hop, entry } = entryHop(base(service('web', 'ClusterIP')));
    assert.equal(entry.path, 'in-cluster');
    assert.match(hop.evidence.join('\n'), /no Ingress or HTTPRoute sends to it/);
  });

  test('behind an Ingress: the IngressClass labels name the controller Service', () => {
    const { hop, entry } = entryHop(base(service('web', 'ClusterIP'), { ingresses: known([ingress]), ingressClasses: known([nginxClass]), services: known([controllerSvc]) }));
    assert.equal(hop.verdict, 'kept');
    assert.deepEqual(entry, { path: 'proxy', controller: 'k8s.io/ingress-nginx', l4: controllerSvc });
  });

  test('an IngressClass without install labels: the controller Service is unknown, not guessed', () => {
    const bare = { ...nginxClass, metadata: { name: 'nginx' } };
    const { hop, entry } = entryHop(base(service('web', 'ClusterIP'), { ingresses: known([ingress]), ingressClasses: known([bare]), services: known([controllerSvc]) }));
    assert.equal(hop.verdict, 'unknown');
    assert.deepEqual(entry, { path: 'proxy', controller: 'k8s.io/ingress-nginx', l4: undefined });
  });

  test('an HTTPRoute through a Gateway: the Service labelled with the Gateway name', () => {
    const gwSvc = service('gw-istio', 'LoadBalancer', { namespace: 'edge', labels: { 'gateway.networking.k8s.io/gateway-name': 'gw' } });
    const { entry } = entryHop(base(service('web', 'ClusterIP'), {
      httpRoutes: known([{ metadata: { name: 'r', namespace: 'shop' }, spec: { parentRefs: [{ name: 'gw', namespace: 'edge' }], rules: [{ backendRefs: [{ name: 'web' }] }] } }]),
      gateways: known([{ metadata: { name: 'gw', namespace: 'edge' }, spec: { gatewayClassName: 'istio' } }]),
      gatewayClasses: known([{ metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } }]),
      services: known([gwSvc]),
    }));
    assert.deepEqual(entry, { path: 'proxy', controller: 'istio.io/gateway-controller', l4: gwSvc });
  });

  test('a forbidden Ingress list makes entry unknown', () => {
    const { hop } = entryHop(base(service('web', 'ClusterIP'), { ingresses: forbidden('ingresses in shop') }));
    assert.equal(hop.verdict, 'unknown');
    assert.match(hop.evidence.at(-1)!, /cannot list ingresses in shop: forbidden/);
  });
});

describe('L4', () => {
  const l4 = (svc: Service, labels: Record<string, string> = OPTED_IN) => l4Hop({ service: svc, namespace: ns(labels), labelPrefix: PREFIX });

  test('Local: kept, with the health check node port', () => {
    const r = l4(service('web', 'LoadBalancer', { policy: 'Local' }));
    assert.equal(r.hop.verdict, 'kept');
    assert.equal(r.viaLocalNodePorts, true);
    assert.match(r.hop.evidence.join('\n'), /healthCheckNodePort 31000/);
  });

  test('Cluster in a namespace that is not opted in: lost, a node IP, label the namespace', () => {
    const r = l4(service('web', 'LoadBalancer', { policy: 'Cluster' }), {});
    assert.equal(r.hop.verdict, 'lost');
    assert.equal(r.hop.sees, 'a node IP');
    assert.match(r.hop.evidence.at(-1)!, /namespace has no label realip\.io\/inject/);
    assert.equal(r.hop.fix, 'kubectl label namespace shop realip.io/inject=enabled --overwrite && realip-webhook audit -n shop --fix services');
  });

  test('Cluster in an opted-in namespace: created before the opt-in, audit --fix services', () => {
    const r = l4(service('web', 'NodePort', { policy: 'Cluster' }));
    assert.equal(r.hop.verdict, 'lost');
    assert.match(r.hop.evidence.at(-1)!, /created before the opt-in/);
    assert.equal(r.hop.fix, 'realip-webhook audit -n shop --fix services');
  });

  test('the opt-out annotation: lost, remove the annotation', () => {
    const r = l4(service('web', 'LoadBalancer', { policy: 'Cluster', annotations: { 'realip.io/external-traffic-policy': 'Cluster' } }));
    assert.match(r.hop.evidence.at(-1)!, /opted out: annotation on the Service realip\.io\/external-traffic-policy=Cluster/);
    assert.match(r.hop.fix!, /^kubectl annotate service web -n shop realip\.io\/external-traffic-policy- /);
  });

  test('a forbidden namespace read: lost all the same, the reason unknown', () => {
    const r = l4Hop({ service: service('web', 'LoadBalancer', { policy: 'Cluster' }), namespace: forbidden('namespaces'), labelPrefix: PREFIX });
    assert.equal(r.hop.verdict, 'lost');
    assert.match(r.hop.evidence.at(-1)!, /why unknown \(cannot list namespaces: forbidden\)/);
  });

  test('AWS NLB ip targets: the policy does not matter; without preserve_client_ip the pod sees the NLB', () => {
    const ip = { 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip' };
    const lost = l4(service('web', 'LoadBalancer', { policy: 'Local', annotations: ip }));
    assert.equal(lost.hop.verdict, 'lost');
    assert.equal(lost.hop.sees, "the load balancer's own IP");
    assert.equal(lost.viaLocalNodePorts, false);
    const kept = l4(service('web', 'LoadBalancer', { policy: 'Cluster', annotations: { ...ip, 'service.beta.kubernetes.io/aws-load-balancer-target-group-attributes': 'deregistration_delay.timeout_seconds=30,preserve_client_ip.enabled=true' } }));
    assert.equal(kept.hop.verdict, 'kept');
    assert.match(kept.hop.evidence.join('\n'), /externalTrafficPolicy Cluster does not matter/);
  });

  test('PROXY protocol keeps the client under Cluster, in the header', () => {
    const r = l4(service('web', 'LoadBalancer', { policy: 'Cluster', annotations: { 'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'true' } }));
    assert.equal(r.hop.verdict, 'kept');
    assert.equal(r.proxyProtocol, true);
  });

  test('docs/explain.md lists every row of the cloud annotation table, in its order', () => {
    const doc = readFileSync(new URL('../../docs/explain.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## Cloud annotations'), doc.indexOf('## RBAC'));
    const documented = [...section.matchAll(/^\| ([^|]+) \| `([^`]+)` \|/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(documented, CLOUD_ANNOTATIONS.map((row) => [row.cloud, row.key]));
  });

  test('the cloud table matches values, not just keys', () => {
    assert.deepEqual(cloudAnnotationsOf({ 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'instance' }), []);
    assert.deepEqual(cloudAnnotationsOf({ 'service.beta.kubernetes.io/aws-load-balancer-target-group-attributes': 'preserve_client_ip.enabled=false' }), []);
  });
});

describe('spread', () => {
  const facts = (o: { slices: EndpointSlice[] | Readable<EndpointSlice[]>; nodes?: Node[] | Readable<Node[]>; local?: boolean; labels?: Record<string, string>; workloads?: Workload[]; pods?: Pod[] }) => ({
    service: service('web', 'LoadBalancer', { policy: 'Local' }),
    viaLocalNodePorts: o.local ?? true,
    slices: Array.isArray(o.slices) ? known(o.slices) : o.slices,
    nodes: o.nodes === undefined ? known([node('n1'), node('n2')]) : Array.isArray(o.nodes) ? known(o.nodes) : o.nodes,
    pods: known(o.pods ?? []),
    workloads: known(o.workloads ?? []),
    namespace: ns(o.labels),
    labelPrefix: PREFIX,
  });

  test('endpoints on two nodes: kept', () => {
    assert.equal(spreadHop(facts({ slices: [slice({ node: 'n1' }, { node: 'n2' })] })).verdict, 'kept');
  });

  test('every replica on one node of two: at risk, names the workload; the webhook would add anti-affinity', () => {
    const hop = spreadHop(facts({
      slices: [slice({ node: 'n1', pod: 'web-1' }, { node: 'n1', pod: 'web-2' })],
      pods: [pod('web-1', { rs: 'web-5d' }), pod('web-2', { rs: 'web-5d' })],
      workloads: [deployment('web'), replicaSet('web-5d', 'web')],
    }));
    assert.equal(hop.verdict, 'at risk');
    assert.match(hop.evidence.join('\n'), /every ready endpoint is on node n1: the load balancer has one backend, the other 1 node\(s\) fail its health check/);
    assert.match(hop.evidence.join('\n'), /workload deployment\/web has no pod anti-affinity; the webhook would add it today/);
    assert.equal(hop.fix, 'kubectl rollout restart deployment/web -n shop');
  });

  test('a NodePort Service on one node of two: the other node drops its clients (no load balancer to take it out)', () => {
    const hop = spreadHop({ ...facts({ slices: [slice({ node: 'n1' })] }), service: service('web', 'NodePort', { policy: 'Local' }) });
    assert.equal(hop.verdict, 'at risk');
    assert.equal(hop.evidence.at(-1), "every ready endpoint is on node n1: clients of the other 1 node(s)' node port are dropped");
  });

  test('one node of two, anti-affinity present: at risk, the fix is more nodes or required', () => {
    const hop = spreadHop(facts({
      slices: [slice({ node: 'n1', pod: 'web-1' })],
      pods: [pod('web-1', { rs: 'web-5d' })],
      workloads: [deployment('web', { antiAffinity: true, annotations: { 'sidecar.istio.io/interceptionMode': 'TPROXY' } }), replicaSet('web-5d', 'web')],
    }));
    assert.match(hop.fix!, /anti-affinity=required/);
  });

  test('a cordoned or unready second node does not count: one schedulable node is kept', () => {
    const cordoned = { ...node('n2'), spec: { unschedulable: true } };
    assert.equal(spreadHop(facts({ slices: [slice({ node: 'n1' })], nodes: [node('n1'), cordoned, node('n3', 'a', false)] })).verdict, 'kept');
  });

  test('all in one zone of two: at risk', () => {
    const hop = spreadHop(facts({ slices: [slice({ node: 'n1', zone: 'a' }, { node: 'n2', zone: 'a' })], nodes: [node('n1', 'a'), node('n2', 'a'), node('n3', 'b')] }));
    assert.equal(hop.verdict, 'at risk');
    assert.match(hop.evidence.join('\n'), /every ready endpoint is in zone a/);
  });

  test('under Cluster spread does not decide the address', () => {
    assert.equal(spreadHop(facts({ slices: [slice({ node: 'n1' })], local: false })).verdict, 'kept');
  });

  test('no ready endpoint: at risk; endpoints naming no node: unknown; forbidden lists: unknown', () => {
    assert.equal(spreadHop(facts({ slices: [slice({ node: 'n1', ready: false })] })).verdict, 'at risk');
    assert.equal(spreadHop(facts({ slices: [slice({})] })).verdict, 'unknown');
    const noSlices = spreadHop(facts({ slices: forbidden('endpointslices in shop') }));
    assert.deepEqual([noSlices.verdict, noSlices.evidence], ['unknown', ['unknown (cannot list endpointslices in shop: forbidden)']]);
    assert.match(spreadHop(facts({ slices: [slice({ node: 'n1' })], nodes: forbidden('nodes') })).evidence.at(-1)!, /cannot list nodes: forbidden/);
  });
});

describe('in the pod', () => {
  const facts = (o: { pods: Pod[] | Readable<Pod[]>; slices?: EndpointSlice[]; labels?: Record<string, string>; workloads?: Workload[]; behind?: boolean }) => ({
    service: service('web', 'LoadBalancer'),
    slices: known(o.slices ?? [slice({ node: 'n1', pod: 'web-1' })]),
    pods: Array.isArray(o.pods) ? known(o.pods) : o.pods,
    workloads: known(o.workloads ?? [deployment('web'), replicaSet('web-5d', 'web')]),
    namespace: ns(o.labels),
    labelPrefix: PREFIX,
    behindL7Proxy: o.behind ?? false,
  });

  test('the interception mode: env, then istio-init -m, then Istio default REDIRECT; native sidecars', () => {
    assert.deepEqual(sidecarOf(pod('p', { proxy: 'TPROXY', native: true })), { native: true, mode: 'TPROXY', from: 'istio-proxy env ISTIO_META_INTERCEPTION_MODE' });
    const withInit: Pod = { ...pod('p', { proxy: 'default' }), spec: { ...pod('p', { proxy: 'default' }).spec, initContainers: [{ name: 'istio-init', args: ['-p', '15001', '-m', 'TPROXY'] }] } };
    assert.equal(sidecarOf(withInit)!.mode, 'TPROXY');
    assert.deepEqual(sidecarOf(pod('p', { proxy: 'default' })), { native: false, mode: 'REDIRECT', from: "Istio's default" });
    assert.equal(sidecarOf(pod('p')), undefined);
  });

  test('no sidecar, or TPROXY: kept', () => {
    assert.equal(inThePodHop(facts({ pods: [pod('web-1', { rs: 'web-5d' })] })).verdict, 'kept');
    assert.equal(inThePodHop(facts({ pods: [pod('web-1', { rs: 'web-5d', proxy: 'TPROXY' })] })).verdict, 'kept');
  });

  test('REDIRECT in an opted-in namespace: lost, 127.0.0.6, created before the opt-in: roll out', () => {
    const hop = inThePodHop(facts({ pods: [pod('web-1', { rs: 'web-5d', proxy: 'REDIRECT' })] }));
    assert.deepEqual([hop.verdict, hop.sees, hop.fix], ['lost', '127.0.0.6', 'kubectl rollout restart deployment/web -n shop']);
    assert.match(hop.evidence.at(-1)!, /created before the opt-in/);
  });

  test('REDIRECT under Pod Security baseline: the level is why, ambient is the fix', () => {
    const hop = inThePodHop(facts({ pods: [pod('web-1', { rs: 'web-5d', proxy: 'REDIRECT' })], labels: { ...OPTED_IN, 'pod-security.kubernetes.io/enforce': 'baseline' } }));
    assert.equal(hop.verdict, 'lost');
    assert.match(hop.evidence.at(-1)!, /namespace enforces pod-security baseline: TPROXY needs NET_ADMIN/);
    assert.match(hop.fix!, /istio\.io\/dataplane-mode=ambient/);
  });

  test('REDIRECT in a namespace not opted in: label it, then roll out', () => {
    const hop = inThePodHop(facts({ pods: [pod('web-1', { rs: 'web-5d', proxy: 'REDIRECT' })], labels: {} }));
    assert.equal(hop.fix, 'kubectl label namespace shop realip.io/inject=enabled --overwrite && kubectl rollout restart deployment/web -n shop');
  });

  test('REDIRECT behind an ingress: kept, the client stays in X-Forwarded-For', () => {
    assert.equal(inThePodHop(facts({ pods: [pod('web-1', { rs: 'web-5d', proxy: 'REDIRECT' })], behind: true })).verdict, 'kept');
  });

  test('endpoints naming no Pod, or Pods forbidden: unknown', () => {
    assert.match(inThePodHop(facts({ pods: [], slices: [slice({ node: 'n1' })] })).evidence[0]!, /no ready endpoint names a Pod/);
    assert.equal(inThePodHop(facts({ pods: forbidden('pods in shop') })).verdict, 'unknown');
  });
});

describe('L7', () => {
  const controllerSvc = service('ingress-nginx-controller', 'LoadBalancer', { namespace: 'ingress-nginx' });
  controllerSvc.spec!.selector = { 'app.kubernetes.io/name': 'ingress-nginx' };
  const controllerDeployment: Workload = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'ingress-nginx-controller', namespace: 'ingress-nginx' },
    spec: { template: { metadata: { labels: { 'app.kubernetes.io/name': 'ingress-nginx' } }, spec: { containers: [{ name: 'controller', args: ['/nginx-ingress-controller', '--configmap=$(POD_NAMESPACE)/ingress-nginx-controller'] }] } } },
  };
  const l7 = (data: Record<string, string>, o: { proxyProtocol?: boolean; controller?: string; l4Kept?: boolean } = {}) =>
    l7Hop({
      controller: o.controller ?? 'k8s.io/ingress-nginx',
      controllerService: controllerSvc,
      workloads: known([controllerDeployment]),
      configMap: known({ metadata: { name: 'ingress-nginx-controller', namespace: 'ingress-nginx' }, data }),
      l4Kept: o.l4Kept ?? true,
      proxyProtocol: o.proxyProtocol ?? false,
    });

  test('the --configmap flag names the ConfigMap, $(POD_NAMESPACE) expanded as the kubelet does', () => {
    assert.deepEqual(nginxConfigMapRef(controllerDeployment), { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' });
  });

  test('defaults behind a kept L4: kept, the keys named', () => {
    const hop = l7({});
    assert.equal(hop.verdict, 'kept');
    assert.match(hop.evidence[0]!, /use-proxy-protocol=\(unset\), use-forwarded-headers=\(unset\), compute-full-forwarded-for=\(unset\)/);
  });

  test('PROXY protocol from the LB without use-proxy-protocol: lost, with the patch', () => {
    const hop = l7({}, { proxyProtocol: true });
    assert.equal(hop.verdict, 'lost');
    assert.match(hop.fix!, /kubectl patch configmap ingress-nginx-controller -n ingress-nginx --type merge -p '\{"data":\{"use-proxy-protocol":"true"\}\}'/);
    assert.equal(l7({ 'use-proxy-protocol': 'true' }, { proxyProtocol: true }).verdict, 'kept');
  });

  test('use-proxy-protocol without a PROXY-protocol LB: at risk', () => {
    assert.equal(l7({ 'use-proxy-protocol': 'true' }).verdict, 'at risk');
  });

  test('another controller: unknown', () => {
    assert.match(l7({}, { controller: 'traefik.io/ingress-controller' }).evidence[0]!, /unknown \(controller traefik\.io\/ingress-controller: explain reads the configuration of k8s\.io\/ingress-nginx only\)/);
  });
});

describe('explain: the hops together, the sentence and the exit status', () => {
  const scope = (svc: Service, o: Partial<ServiceFacts> = {}): ServiceFacts => ({
    service: svc,
    namespace: ns(),
    slices: known([slice({ node: 'n1', pod: 'web-1' }, { node: 'n2', pod: 'web-2' })]),
    pods: known([pod('web-1', { rs: 'web-5d' }), pod('web-2', { rs: 'web-5d' })]),
    workloads: known([deployment('web', { antiAffinity: true }), replicaSet('web-5d', 'web')]),
    ...o,
  });
  const facts = (app: ServiceFacts, o: Partial<ExplainFacts> = {}): ExplainFacts => ({
    labelPrefix: PREFIX,
    entry: { service: app.service, ingresses: known([]), ingressClasses: known([]), httpRoutes: undefined, gateways: undefined, gatewayClasses: undefined, services: known([]) },
    app,
    nodes: known([node('n1'), node('n2')]),
    nginxConfigMap: known(undefined),
    ...o,
  });

  test('Local, spread, no sidecar: the client IP, exit 0', () => {
    const r = explain(facts(scope(service('web', 'LoadBalancer', { policy: 'Local' }))));
    assert.deepEqual(r.hops.map((h) => [h.hop, h.verdict]), [['entry', 'kept'], ['L4', 'kept'], ['spread', 'kept'], ['in the pod', 'kept']]);
    assert.equal(r.verdict, 'The app sees the client IP.');
    assert.equal(r.exitCode, 0);
  });

  test('Cluster: a node IP, exit 1; the table shows the fix', () => {
    const r = explain(facts(scope(service('web', 'LoadBalancer', { policy: 'Cluster' }), { namespace: ns({}) })));
    assert.equal(r.verdict, 'The app sees a node IP: lost at L4 (the webhook leaves it alone: namespace has no label realip.io/inject).');
    assert.equal(r.exitCode, 1);
    assert.match(formatTable(r), /^L4 +lost +Service shop\/web: type LoadBalancer, externalTrafficPolicy Cluster$/m);
    assert.match(formatTable(r), /^ +fix: kubectl label namespace shop realip\.io\/inject=enabled --overwrite && realip-webhook audit -n shop --fix services$/m);
  });

  test('Local but one node: the client IP, at risk, exit 1', () => {
    const r = explain(facts(scope(service('web', 'LoadBalancer', { policy: 'Local' }), { slices: known([slice({ node: 'n1', pod: 'web-1' })]) })));
    assert.match(r.verdict, /^The app sees the client IP, at risk at spread: every ready endpoint is on node n1/);
    assert.equal(r.exitCode, 1);
  });

  test('a forbidden Pod list: cannot tell, exit 1, never a throw', () => {
    const r = explain(facts(scope(service('web', 'LoadBalancer', { policy: 'Local' }), { pods: forbidden('pods in shop') })));
    assert.equal(r.verdict, 'Cannot tell what the app sees: in the pod is unknown (cannot list pods in shop: forbidden).');
    assert.equal(r.exitCode, 1);
  });
});
