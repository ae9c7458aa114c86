// Table-driven tests of every SPEC rule, through mutate(): each patch is applied with the API
// server's JSON-patch rules and the resulting object is asserted, then a second pass over the
// result must give an empty patch (idempotence, reinvocationPolicy IfNeeded).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapePointerSegment, toPointer } from '../../src/mutation/json-patch.js';
import { mutate, type MutationInput, type MutationResult } from '../../src/mutation/mutate.js';
import * as fx from '../fixtures/objects.js';
import { applyStrict } from '../support/patch.js';

type Json = Record<string, any>;
const OPTED_IN = { 'realip.io/inject': 'enabled' };
const TPROXY = 'sidecar.istio.io/interceptionMode';
const HOST = 'kubernetes.io/hostname';

interface Case {
  name: string;
  object: Json;
  labels?: Record<string, string>;
  operation?: 'CREATE' | 'UPDATE' | 'DELETE';
  oldObject?: Json;
  kind?: { group: string; kind: string };
  prefix?: string;
  /** Asserts on the mutated object and the result. */
  expect: (mutated: Json, result: MutationResult) => void;
}

function run(c: Case, object: Json = c.object): MutationResult {
  const input: MutationInput = {
    kind: c.kind ?? { group: fx.GROUPS[object['kind']] ?? '', kind: object['kind'] },
    operation: c.operation ?? 'CREATE',
    object: structuredClone(object),
    oldObject: c.oldObject,
    namespaceLabels: c.labels ?? OPTED_IN,
    labelPrefix: c.prefix ?? 'realip.io',
  };
  return mutate(input);
}

function checkCases(cases: Case[]) {
  for (const c of cases) {
    test(c.name, () => {
      const input = structuredClone(c.object);
      const result = run(c);
      assert.deepEqual(c.object, input, 'mutate() must not modify its input');
      const mutated = applyStrict(c.object, result.ops);
      // Every skip says why in the log, and every warning names the webhook to the kubectl user.
      for (const skip of result.skips) assert.ok(typeof skip === 'string' && skip !== '', `a skip reason: ${JSON.stringify(result.skips)}`);
      for (const warning of result.warnings) assert.match(warning, /^realip-webhook: \S/);
      c.expect(mutated, result);
      const again = run(c, mutated);
      assert.deepEqual(again.ops, [], 'a second pass over the mutated object gives an empty patch');
    });
  }
}

const template = (o: Json, path = ['spec', 'template']) => path.reduce((n, k) => n[k], o);
const tproxyOf = (o: Json, path?: string[]) => template(o, path).metadata?.annotations?.[TPROXY];
const antiOf = (o: Json) => template(o).spec.affinity?.podAntiAffinity;
const noChange = (result: MutationResult) => assert.deepEqual(result.ops, []);
const skipMatches = (result: MutationResult, re: RegExp) =>
  assert.ok(result.skips.some((s) => re.test(s)), `a skip reason matches ${re}: ${JSON.stringify(result.skips)}`);
const warningMatches = (result: MutationResult, re: RegExp) =>
  assert.ok(result.warnings.some((w) => re.test(w)), `a warning matches ${re}: ${JSON.stringify(result.warnings)}`);

describe('Services: externalTrafficPolicy', () => {
  checkCases([
    {
      name: 'NodePort defaulted to Cluster becomes Local',
      object: fx.service('NodePort'),
      expect: (m, r) => {
        assert.equal(m['spec'].externalTrafficPolicy, 'Local');
        assert.deepEqual(r.changes, ['external-traffic-policy=Local']);
        warningMatches(r, /externalTrafficPolicy=Local/);
      },
    },
    {
      name: 'LoadBalancer becomes Local and healthCheckNodePort is left to the API server',
      object: fx.service('LoadBalancer'),
      expect: (m, r) => {
        assert.equal(m['spec'].externalTrafficPolicy, 'Local');
        assert.equal(m['spec'].healthCheckNodePort, undefined);
        assert.ok(r.ops.every((op) => !op.path.includes('healthCheckNodePort')));
      },
    },
    {
      name: 'LoadBalancer already Local with an allocated healthCheckNodePort is untouched',
      object: fx.service('LoadBalancer', { spec: { externalTrafficPolicy: 'Local', healthCheckNodePort: 32001 } }),
      expect: (m, r) => {
        noChange(r);
        assert.equal(m['spec'].healthCheckNodePort, 32001);
      },
    },
    {
      name: 'ClusterIP is never changed',
      object: fx.service('ClusterIP'),
      expect: (m, r) => {
        noChange(r);
        assert.equal(m['spec'].externalTrafficPolicy, undefined);
        skipMatches(r, /ClusterIP/);
      },
    },
    {
      name: 'headless ClusterIP None is never changed',
      object: fx.service('ClusterIP', { spec: { clusterIP: 'None', clusterIPs: ['None'] } }),
      expect: (_m, r) => noChange(r),
    },
    {
      name: 'ExternalName is never changed',
      object: fx.service('ExternalName'),
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /ExternalName/);
      },
    },
    {
      name: 'a Service without spec.type is a ClusterIP',
      object: (() => {
        const s = fx.service('ClusterIP');
        delete s['spec'].type;
        return s;
      })(),
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /type ClusterIP/);
      },
    },
    {
      name: 'namespace label Cluster leaves the Service alone',
      object: fx.service('NodePort'),
      labels: { ...OPTED_IN, 'realip.io/external-traffic-policy': 'Cluster' },
      expect: (m, r) => {
        noChange(r);
        assert.equal(m['spec'].externalTrafficPolicy, 'Cluster');
      },
    },
    {
      name: 'annotation Cluster on the Service overrides the namespace (the opt-out for a Service), and the log says so',
      object: fx.service('LoadBalancer', { metadata: { annotations: { 'realip.io/external-traffic-policy': 'Cluster' } } }),
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /annotation on the Service realip\.io\/external-traffic-policy=Cluster/);
      },
    },
    {
      name: 'annotation Local on the Service overrides a namespace that says Cluster',
      object: fx.service('NodePort', { metadata: { annotations: { 'realip.io/external-traffic-policy': 'Local' } } }),
      labels: { ...OPTED_IN, 'realip.io/external-traffic-policy': 'Cluster' },
      expect: (m) => assert.equal(m['spec'].externalTrafficPolicy, 'Local'),
    },
    {
      name: 'an invalid namespace label value is not guessed at: no change, a warning naming label and values',
      object: fx.service('NodePort'),
      labels: { ...OPTED_IN, 'realip.io/external-traffic-policy': 'local' },
      expect: (m, r) => {
        noChange(r);
        assert.equal(m['spec'].externalTrafficPolicy, 'Cluster');
        warningMatches(r, /namespace label realip\.io\/external-traffic-policy="local" is invalid \(allowed: Local, Cluster\)/);
      },
    },
    // The `mutate` command reads whole GitOps trees, where kinds of other groups are called Service too.
    ...[
      { apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'hello' }, spec: { template: fx.podTemplate() } },
      { apiVersion: 'networking.example.com/v1', kind: 'Service', metadata: { name: 'edge' }, spec: { type: 'LoadBalancer' } },
    ].map((object) => ({
      name: `a Service of another API group (${object.apiVersion}) is left alone`,
      object,
      kind: { group: object.apiVersion.split('/')[0]!, kind: 'Service' },
      expect: (m: Json, r: MutationResult) => {
        noChange(r);
        assert.equal(m['spec'].externalTrafficPolicy, undefined);
        assert.equal(r.skipped, true, 'out of scope as a whole');
        skipMatches(r, new RegExp(`kind ${object.apiVersion.split('/')[0]}/Service is not handled`));
      },
    })),
    {
      name: 'a Service without metadata (a bare manifest) is handled',
      object: (() => {
        const s = fx.service('NodePort');
        delete s['metadata'];
        return s;
      })(),
      expect: (m) => assert.equal(m['spec'].externalTrafficPolicy, 'Local'),
    },
    {
      name: 'an UPDATE that turns a ClusterIP Service into NodePort sets Local',
      object: fx.service('NodePort'),
      operation: 'UPDATE',
      oldObject: fx.service('ClusterIP'),
      expect: (m) => assert.equal(m['spec'].externalTrafficPolicy, 'Local'),
    },
  ]);
});

describe('opt-in and opt-out', () => {
  checkCases([
    {
      name: 'a namespace without the inject label is not touched',
      object: fx.deployment(),
      labels: {},
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /no label realip\.io\/inject/);
      },
    },
    {
      name: 'a namespace with inject=disabled is not touched and not warned about',
      object: fx.service('NodePort'),
      labels: { 'realip.io/inject': 'disabled' },
      expect: (_m, r) => {
        noChange(r);
        assert.deepEqual(r.warnings, []);
      },
    },
    {
      name: 'an invalid inject label is warned about and nothing is changed',
      object: fx.deployment(),
      labels: { 'realip.io/inject': 'yes' },
      expect: (_m, r) => {
        noChange(r);
        warningMatches(r, /namespace label realip\.io\/inject="yes" is invalid \(allowed: enabled, disabled\)/);
      },
    },
    {
      name: 'object annotation inject=disabled skips the object entirely',
      object: fx.deployment({ annotations: { 'realip.io/inject': 'disabled' } }),
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /annotation on the Deployment realip\.io\/inject=disabled/);
      },
    },
    // An invalid value is never guessed at, on the object as on the namespace: nothing changes, and
    // the warning names where the value was written.
    ...[
      { where: 'annotation on the Deployment', object: fx.deployment({ annotations: { 'realip.io/inject': 'yes' } }), raw: 'yes' },
      {
        where: 'annotation on the pod template',
        object: fx.deployment({ template: fx.podTemplate({ annotations: { 'realip.io/inject': 'Enabled' } }) }),
        raw: 'Enabled',
      },
      { where: 'annotation on the Service', object: fx.service('NodePort', { metadata: { annotations: { 'realip.io/inject': 'off' } } }), raw: 'off' },
      { where: 'annotation on the Pod', object: { ...fx.pod(), metadata: { name: 'bare', annotations: { 'realip.io/inject': 'false' } } }, raw: 'false' },
    ].map(({ where, object, raw }) => ({
      name: `an invalid inject value in the ${where} is warned about and nothing is changed`,
      object,
      expect: (_m: Json, r: MutationResult) => {
        noChange(r);
        assert.equal(r.warnings.length, 1);
        warningMatches(r, new RegExp(`${where} realip\\.io/inject="${raw}" is invalid \\(allowed: enabled, disabled\\)`));
      },
    })),
    {
      name: 'inject=enabled on the object and its template, in an opted-in namespace, is mutated as usual',
      object: fx.deployment({
        annotations: { 'realip.io/inject': 'enabled' },
        template: fx.podTemplate({ annotations: { 'realip.io/inject': 'enabled' } }),
      }),
      expect: (m, r) => {
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.deepEqual(r.changes, ['anti-affinity=preferred/hostname', 'istio-interception=TPROXY']);
      },
    },
    {
      name: 'a Pod annotated inject=disabled is not touched',
      object: { ...fx.pod(), metadata: { name: 'bare', annotations: { 'realip.io/inject': 'disabled' } } },
      expect: (_m, r) => noChange(r),
    },
    {
      name: 'pod template annotation inject=disabled skips the workload',
      object: fx.deployment({ template: fx.podTemplate({ annotations: { 'realip.io/inject': 'disabled' } }) }),
      expect: (_m, r) => noChange(r),
    },
    {
      name: 'inject=disabled on a Service skips it',
      object: fx.service('NodePort', { metadata: { annotations: { 'realip.io/inject': 'disabled' } } }),
      expect: (m, r) => {
        noChange(r);
        assert.equal(m['spec'].externalTrafficPolicy, 'Cluster');
      },
    },
    {
      name: 'a custom label prefix is used for labels and annotations, the default prefix is ignored',
      object: fx.service('NodePort', { metadata: { annotations: { 'realip.io/inject': 'disabled' } } }),
      prefix: 'ip.example.com',
      labels: { 'ip.example.com/inject': 'enabled' },
      expect: (m) => assert.equal(m['spec'].externalTrafficPolicy, 'Local'),
    },
    {
      name: 'with a custom prefix, a namespace labelled only with realip.io is not opted in',
      object: fx.service('NodePort'),
      prefix: 'ip.example.com',
      expect: (_m, r) => noChange(r),
    },
  ]);
});

describe('workloads: which kinds get what', () => {
  const withAntiAffinity = ['deployment', 'statefulSet', 'replicaSet'] as const;
  checkCases(
    withAntiAffinity.map((make) => ({
      name: `${make} gets preferred hostname anti-affinity on its selector and TPROXY`,
      object: fx[make](),
      expect: (m: Json, r: MutationResult) => {
        assert.deepEqual(antiOf(m), {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: HOST } },
          ],
        });
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.deepEqual(r.changes, ['anti-affinity=preferred/hostname', 'istio-interception=TPROXY']);
        assert.deepEqual(r.skips, [], 'every feature applied: nothing is logged as skipped');
        assert.equal(r.skipped, undefined, 'in scope');
      },
    })),
  );
  checkCases([
    ...(['daemonSet', 'job'] as const).map((make) => ({
      name: `${make} gets TPROXY only`,
      object: fx[make](),
      expect: (m: Json, r: MutationResult) => {
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.equal(template(m).spec.affinity, undefined);
        assert.deepEqual(r.changes, ['istio-interception=TPROXY']);
      },
    })),
    ...(['batch/v1', 'batch/v1beta1'] as const).map((apiVersion) => ({
      name: `CronJob as ${apiVersion} gets TPROXY on spec.jobTemplate.spec.template`,
      object: fx.cronJob(apiVersion),
      expect: (m: Json, r: MutationResult) => {
        const path = ['spec', 'jobTemplate', 'spec', 'template'];
        assert.equal(tproxyOf(m, path), 'TPROXY');
        assert.equal(template(m, path).spec.affinity, undefined);
        assert.deepEqual(r.ops.map((o) => o.path), ['/spec/jobTemplate/spec/template/metadata/annotations']);
      },
    })),
    {
      name: 'a bare Pod on CREATE gets TPROXY on its own metadata',
      object: fx.pod(),
      expect: (m, r) => {
        assert.equal(m['metadata'].annotations[TPROXY], 'TPROXY');
        assert.equal(m['spec'].affinity, undefined);
        assert.deepEqual(r.ops.map((o) => o.path), ['/metadata/annotations']);
      },
    },
    {
      name: 'a generateName Pod with no metadata.namespace gets TPROXY',
      object: fx.generateNamePod(),
      expect: (m) => assert.equal(m['metadata'].annotations[TPROXY], 'TPROXY'),
    },
    {
      name: 'a Pod UPDATE is never changed',
      object: fx.pod(),
      operation: 'UPDATE',
      oldObject: fx.pod(),
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /only changed on CREATE/);
      },
    },
    {
      name: 'an unknown kind is left alone',
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } },
      expect: (_m, r) => {
        noChange(r);
        assert.equal(r.skipped, true);
        skipMatches(r, /kind ConfigMap is not handled/);
      },
    },
    {
      name: 'a Deployment of extensions/v1beta1 (old clusters, matchPolicy Equivalent) is mutated like apps/v1',
      object: { ...fx.deployment(), apiVersion: 'extensions/v1beta1' },
      kind: { group: 'extensions', kind: 'Deployment' },
      expect: (m) => {
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.ok(antiOf(m));
      },
    },
    // Kinds that get no anti-affinity do not read its labels: no warning about a bad value there.
    ...(['daemonSet', 'job', 'cronJob', 'pod'] as const).map((make) => ({
      name: `${make} ignores the anti-affinity labels, even invalid ones`,
      object: fx[make](),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity': 'sometimes', 'realip.io/anti-affinity-topology': 'rack' },
      expect: (_m: Json, r: MutationResult) => {
        assert.deepEqual(r.changes, ['istio-interception=TPROXY']);
        assert.deepEqual(r.skips, []);
        assert.equal(r.warnings.length, 1);
        warningMatches(r, /interceptionMode=TPROXY/);
      },
    })),
    {
      name: "an invalid annotation on a Pod is named as the Pod's, the only place a Pod has one",
      object: { ...fx.pod(), metadata: { name: 'bare', annotations: { 'realip.io/istio-interception': 'on' } } },
      expect: (_m, r) => {
        noChange(r);
        warningMatches(r, /^realip-webhook: annotation on the Pod realip\.io\/istio-interception="on" is invalid/);
      },
    },
    {
      name: 'a Deployment kind from another API group is left alone, and the log names the group',
      object: fx.deployment(),
      kind: { group: 'example.com', kind: 'Deployment' },
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /kind example\.com\/Deployment is not handled/);
      },
    },
    // The API server validates after mutating webhooks: an object they see may still lack required
    // fields. It is answered, never crashed on, so that validation gives the user the real error.
    {
      name: 'a Deployment without a pod template is left alone',
      object: (() => {
        const d = fx.deployment();
        delete d['spec'].template;
        return d;
      })(),
      expect: (_m, r) => {
        noChange(r);
        assert.equal(r.skipped, true);
        skipMatches(r, /Deployment has no pod template/);
      },
    },
    {
      name: 'a CronJob without a jobTemplate has no pod template and is left alone',
      object: { ...fx.cronJob(), spec: { schedule: '0 3 * * *' } },
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /CronJob has no pod template/);
      },
    },
    {
      name: 'a CronJob whose jobTemplate is null has no pod template and is left alone',
      object: { ...fx.cronJob(), spec: { schedule: '0 3 * * *', jobTemplate: null } },
      expect: (_m, r) => {
        noChange(r);
        skipMatches(r, /CronJob has no pod template/);
      },
    },
    {
      name: 'a pod template without spec gets anti-affinity and TPROXY, parents created',
      object: fx.deployment({ template: { metadata: { labels: { app: 'source-ip-app' } } } }),
      expect: (m, r) => {
        assert.ok(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution);
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.deepEqual(r.ops.map((o) => o.path), ['/spec/template/spec', '/spec/template/metadata/annotations']);
      },
    },
    {
      name: 'DELETE is never changed',
      object: fx.deployment(),
      operation: 'DELETE',
      expect: (_m, r) => noChange(r),
    },
  ]);
});

/** A Deployment whose template already prefers spreading over zones, with a weight of its own. */
const withZonePreference = () =>
  fx.deployment({
    template: fx.podTemplate({
      spec: {
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 10, podAffinityTerm: { labelSelector: { matchLabels: { app: 'x' } }, topologyKey: 'topology.kubernetes.io/zone' } },
            ],
          },
        },
      },
    }),
  });

/** A Deployment whose template already requires spreading its pods over these topology keys. */
const withRequiredTerms = (...topologyKeys: string[]) =>
  fx.deployment({
    template: fx.podTemplate({
      spec: {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: topologyKeys.map((topologyKey) => ({ labelSelector: { matchLabels: { app: 'x' } }, topologyKey })),
          },
        },
      },
    }),
  });

describe('anti-affinity', () => {
  checkCases([
    {
      name: 'required mode adds a required term',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity': 'required' },
      expect: (m) =>
        assert.deepEqual(antiOf(m), {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: HOST },
          ],
        }),
    },
    {
      name: 'zone topology uses topology.kubernetes.io/zone',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity-topology': 'zone' },
      expect: (m) =>
        assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey, 'topology.kubernetes.io/zone'),
    },
    {
      name: 'none adds no anti-affinity but still TPROXY',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity': 'none' },
      expect: (m) => {
        assert.equal(template(m).spec.affinity, undefined);
        assert.equal(tproxyOf(m), 'TPROXY');
      },
    },
    {
      name: 'matchExpressions of the selector are carried into the term',
      object: fx.deployment({
        spec: {
          selector: {
            matchLabels: { app: 'source-ip-app' },
            matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
          },
        },
      }),
      expect: (m) =>
        assert.deepEqual(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector, {
          matchLabels: { app: 'source-ip-app' },
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
        }),
    },
    {
      name: 'no selector, no anti-affinity (TPROXY still applies)',
      object: fx.deployment({ spec: { selector: undefined } }),
      expect: (m, r) => {
        assert.equal(template(m).spec.affinity, undefined);
        assert.equal(tproxyOf(m), 'TPROXY');
        skipMatches(r, /no spec\.selector/);
      },
    },
    // An empty labelSelector in a term would select every pod of the namespace.
    ...[{ matchLabels: {} }, { matchExpressions: [] }, { matchLabels: {}, matchExpressions: [] }].map((selector) => ({
      name: `an empty selector ${JSON.stringify(selector)} counts as no selector`,
      object: fx.deployment({ spec: { selector } }),
      expect: (m: Json) => assert.equal(template(m).spec.affinity, undefined),
    })),
    {
      name: 'an empty matchExpressions list beside matchLabels is not carried into the term',
      object: fx.deployment({ spec: { selector: { matchLabels: { app: 'source-ip-app' }, matchExpressions: [] } } }),
      expect: (m) =>
        assert.deepEqual(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector, {
          matchLabels: { app: 'source-ip-app' },
        }),
    },
    {
      name: 'existing nodeAffinity is kept and podAntiAffinity is added beside it',
      object: fx.deployment({
        template: fx.podTemplate({
          spec: {
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }],
                },
              },
            },
          },
        }),
      }),
      expect: (m) => {
        assert.ok(template(m).spec.affinity.nodeAffinity, 'nodeAffinity kept');
        assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution.length, 1);
      },
    },
    {
      name: 'an existing anti-affinity term with the same topologyKey stays and nothing is added beside it',
      object: fx.deployment({
        template: fx.podTemplate({
          spec: {
            affinity: {
              podAntiAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [
                  { labelSelector: { matchLabels: { team: 'x' } }, topologyKey: HOST },
                ],
              },
            },
          },
        }),
      }),
      expect: (m, r) => {
        assert.deepEqual(antiOf(m), {
          requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { team: 'x' } }, topologyKey: HOST }],
        });
        skipMatches(r, /already has an anti-affinity term for kubernetes\.io\/hostname/);
      },
    },
    {
      name: "the user's preferred term with the same topologyKey stays and nothing is added, not even a required one",
      object: fx.deployment({
        template: fx.podTemplate({
          spec: {
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 5, podAffinityTerm: { labelSelector: { matchLabels: { app: 'x' } }, topologyKey: HOST } },
                ],
              },
            },
          },
        }),
      }),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity': 'required' },
      expect: (m) => {
        assert.equal(antiOf(m).requiredDuringSchedulingIgnoredDuringExecution, undefined);
        assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution.length, 1);
      },
    },
    {
      name: 'a preferred term without podAffinityTerm (invalid, validation will say so) is no match and no crash',
      object: fx.deployment({
        template: fx.podTemplate({ spec: { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1 }] } } } }),
      }),
      expect: (m) => assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution[1].podAffinityTerm.topologyKey, HOST),
    },
    {
      name: 'a preferred term for another topologyKey stays and ours is appended to the same list',
      object: withZonePreference(),
      expect: (m, r) => {
        const list = antiOf(m).preferredDuringSchedulingIgnoredDuringExecution;
        assert.equal(list.length, 2);
        assert.equal(list[0].weight, 10);
        assert.equal(list[1].podAffinityTerm.topologyKey, HOST);
        assert.equal(r.ops[0]!.path, '/spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/-');
      },
    },
    {
      name: "the user's required terms, one of them on the same topologyKey, stay and nothing is added",
      object: withRequiredTerms('topology.kubernetes.io/zone', HOST),
      expect: (m) => assert.deepEqual(antiOf(m), antiOf(withRequiredTerms('topology.kubernetes.io/zone', HOST))),
    },
    {
      name: "the user's required term for another topologyKey stays and ours is added beside it",
      object: withRequiredTerms('topology.kubernetes.io/zone'),
      expect: (m) => {
        assert.equal(antiOf(m).requiredDuringSchedulingIgnoredDuringExecution.length, 1);
        assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey, HOST);
      },
    },
    {
      name: 'required mode with only a preferred list creates the required list beside it',
      object: withZonePreference(),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity': 'required' },
      expect: (m) => {
        assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution.length, 1);
        assert.equal(antiOf(m).requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey, HOST);
      },
    },
    {
      name: 'affinity: null is replaced, not indexed into',
      object: fx.deployment({ template: fx.podTemplate({ spec: { affinity: null } }) }),
      expect: (m) => assert.equal(antiOf(m).preferredDuringSchedulingIgnoredDuringExecution.length, 1),
    },
    {
      name: 'an invalid anti-affinity label turns only that feature off, with a warning',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity': 'sometimes' },
      expect: (m, r) => {
        assert.equal(template(m).spec.affinity, undefined);
        assert.equal(tproxyOf(m), 'TPROXY');
        warningMatches(r, /namespace label realip\.io\/anti-affinity="sometimes" is invalid \(allowed: preferred, required, none\)/);
      },
    },
    {
      name: 'an invalid topology label turns anti-affinity off, with a warning',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'realip.io/anti-affinity-topology': 'rack' },
      expect: (m, r) => {
        assert.equal(template(m).spec.affinity, undefined);
        warningMatches(r, /anti-affinity-topology="rack" is invalid \(allowed: hostname, zone\)/);
      },
    },
  ]);
});

describe('overrides: pod template over object over namespace', () => {
  checkCases([
    {
      name: 'object annotation required overrides the namespace preferred',
      object: fx.deployment({ annotations: { 'realip.io/anti-affinity': 'required' } }),
      expect: (m) => assert.equal(antiOf(m).requiredDuringSchedulingIgnoredDuringExecution.length, 1),
    },
    {
      name: 'pod template annotation none overrides the object annotation required',
      object: fx.deployment({
        annotations: { 'realip.io/anti-affinity': 'required' },
        template: fx.podTemplate({ annotations: { 'realip.io/anti-affinity': 'none' } }),
      }),
      expect: (m) => assert.equal(template(m).spec.affinity, undefined),
    },
    {
      name: 'an invalid annotation is not replaced by the namespace value: the feature is off',
      object: fx.deployment({ annotations: { 'realip.io/istio-interception': 'tproxy' } }),
      labels: { ...OPTED_IN, 'realip.io/istio-interception': 'TPROXY' },
      expect: (m, r) => {
        assert.equal(tproxyOf(m), undefined);
        warningMatches(r, /annotation on the Deployment realip\.io\/istio-interception="tproxy" is invalid \(allowed: TPROXY, none\)/);
      },
    },
    {
      name: 'namespace istio-interception=none adds no TPROXY',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'realip.io/istio-interception': 'none' },
      expect: (m) => assert.equal(tproxyOf(m), undefined),
    },
    {
      name: 'pod template annotation TPROXY overrides namespace none',
      object: { ...fx.daemonSet(), spec: { ...fx.daemonSet()['spec'], template: fx.podTemplate({ annotations: { 'realip.io/istio-interception': 'TPROXY' } }) } },
      labels: { ...OPTED_IN, 'realip.io/istio-interception': 'none' },
      expect: (m) => assert.equal(tproxyOf(m), 'TPROXY'),
    },
  ]);
});

describe('TPROXY safety', () => {
  checkCases([
    ...['REDIRECT', 'TPROXY', 'NONE', ''].map((value) => ({
      name: `an explicit interceptionMode ${JSON.stringify(value)} is kept`,
      object: fx.deployment({ template: fx.podTemplate({ annotations: { [TPROXY]: value } }) }),
      expect: (m: Json, r: MutationResult) => {
        assert.equal(tproxyOf(m), value);
        skipMatches(r, /explicit sidecar\.istio\.io\/interceptionMode/);
      },
    })),
    ...['baseline', 'restricted'].map((level) => ({
      name: `pod-security enforce=${level} skips TPROXY with a warning (anti-affinity still applies)`,
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'pod-security.kubernetes.io/enforce': level },
      expect: (m: Json, r: MutationResult) => {
        assert.equal(tproxyOf(m), undefined);
        assert.ok(antiOf(m));
        warningMatches(r, new RegExp(`TPROXY not set: namespace enforces pod-security ${level}.*NET_ADMIN`));
      },
    })),
    {
      name: 'Istio ambient namespace (istio.io/dataplane-mode=ambient): no TPROXY, a skip reason and no warning; anti-affinity still applies',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'istio.io/dataplane-mode': 'ambient' },
      expect: (m: Json, r: MutationResult) => {
        assert.equal(tproxyOf(m), undefined);
        assert.ok(antiOf(m));
        skipMatches(r, /Istio ambient mode \(istio\.io\/dataplane-mode=ambient\): no sidecar, ztunnel keeps the client address/);
        assert.ok(!r.warnings.some((w) => /TPROXY|ambient/.test(w)), `no warning about it: ${r.warnings.join(' | ')}`);
      },
    },
    {
      name: 'a bare Pod in an ambient namespace gets no TPROXY',
      object: fx.pod(),
      labels: { ...OPTED_IN, 'istio.io/dataplane-mode': 'ambient' },
      expect: (m: Json, r: MutationResult) => {
        assert.equal(m['metadata'].annotations?.[TPROXY], undefined);
        skipMatches(r, /ambient mode/);
      },
    },
    ...[
      ['label', fx.deployment({ template: { ...fx.podTemplate(), metadata: { labels: { app: 'source-ip-app', 'sidecar.istio.io/inject': 'true' } } } })],
      ['annotation', fx.deployment({ template: fx.podTemplate({ annotations: { 'sidecar.istio.io/inject': 'true' } }) })],
    ].map(([where, object]) => ({
      name: `ambient namespace, but the pod template asks for a sidecar (sidecar.istio.io/inject: "true" ${where}): TPROXY`,
      object: object as Json,
      labels: { ...OPTED_IN, 'istio.io/dataplane-mode': 'ambient' },
      expect: (m: Json) => assert.equal(tproxyOf(m), 'TPROXY'),
    })),
    {
      name: 'ambient namespace with sidecar.istio.io/inject: "false" on the template: no TPROXY',
      object: fx.deployment({ template: fx.podTemplate({ annotations: { 'sidecar.istio.io/inject': 'false' } }) }),
      labels: { ...OPTED_IN, 'istio.io/dataplane-mode': 'ambient' },
      expect: (m: Json) => assert.equal(tproxyOf(m), undefined),
    },
    {
      name: 'istio.io/dataplane-mode=none is not ambient: TPROXY',
      object: fx.deployment(),
      labels: { ...OPTED_IN, 'istio.io/dataplane-mode': 'none' },
      expect: (m: Json) => assert.equal(tproxyOf(m), 'TPROXY'),
    },
    {
      name: 'pod-security enforce=privileged allows TPROXY',
      object: fx.pod(),
      labels: { ...OPTED_IN, 'pod-security.kubernetes.io/enforce': 'privileged' },
      expect: (m) => assert.equal(m['metadata'].annotations[TPROXY], 'TPROXY'),
    },
    {
      name: 'other annotations are kept and the key is escaped as sidecar.istio.io~1interceptionMode',
      object: fx.deployment({ template: fx.podTemplate({ annotations: { 'prometheus.io/scrape': 'true' } }) }),
      expect: (m, r) => {
        assert.equal(template(m).metadata.annotations['prometheus.io/scrape'], 'true');
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.ok(r.ops.some((op) => op.path === '/spec/template/metadata/annotations/sidecar.istio.io~1interceptionMode'));
      },
    },
    {
      name: 'a template without metadata gets metadata created',
      object: (() => {
        const j = fx.job();
        delete j['spec'].template.metadata;
        return j;
      })(),
      expect: (m, r) => {
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.deepEqual(r.ops.map((o) => o.path), ['/spec/template/metadata']);
      },
    },
  ]);
});

describe('UPDATE: no surprise rollout', () => {
  const scaled = fx.deployment({ spec: { replicas: 5 } });
  const newImage = fx.deployment();
  newImage['spec'].template.spec.containers[0].image = 'registry.k8s.io/echoserver:1.10';
  checkCases([
    {
      name: 'an UPDATE that does not change the pod template (a scale) changes nothing',
      object: scaled,
      operation: 'UPDATE',
      oldObject: fx.deployment(),
      expect: (m, r) => {
        noChange(r);
        assert.equal(template(m).spec.affinity, undefined);
        skipMatches(r, /does not change the pod template/);
      },
    },
    {
      // The API server sends no oldObject on CREATE; a review that carries one is still a create.
      name: 'a CREATE is mutated even when its review carries an oldObject with the same pod template',
      object: fx.deployment(),
      operation: 'CREATE',
      oldObject: fx.deployment(),
      expect: (m) => {
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.ok(antiOf(m));
      },
    },
    {
      name: 'an UPDATE that changes the pod template is mutated',
      object: newImage,
      operation: 'UPDATE',
      oldObject: fx.deployment(),
      expect: (m) => {
        assert.equal(tproxyOf(m), 'TPROXY');
        assert.ok(antiOf(m));
      },
    },
    // Only a Pod is changed on CREATE alone; every controller's pod template is changed on UPDATE too.
    ...(['statefulSet', 'replicaSet', 'daemonSet', 'job', 'cronJob'] as const).map((make) => {
      const path = make === 'cronJob' ? ['spec', 'jobTemplate', 'spec', 'template'] : ['spec', 'template'];
      const object = fx[make]();
      template(object, path).spec.containers[0].image = 'registry.k8s.io/echoserver:1.10';
      return {
        name: `a ${make} UPDATE that changes the pod template is mutated`,
        object,
        operation: 'UPDATE' as const,
        oldObject: fx[make](),
        expect: (m: Json) => assert.equal(tproxyOf(m, path), 'TPROXY'),
      };
    }),
    {
      name: 'a CronJob UPDATE that only changes the schedule changes nothing',
      object: { ...fx.cronJob(), spec: { ...fx.cronJob()['spec'], schedule: '0 4 * * *' } },
      operation: 'UPDATE',
      oldObject: fx.cronJob(),
      expect: (_m, r) => noChange(r),
    },
    {
      name: 'a Service UPDATE is mutated regardless (no pods restart)',
      object: fx.service('LoadBalancer', { spec: { ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] } }),
      operation: 'UPDATE',
      oldObject: fx.service('LoadBalancer'),
      expect: (m) => assert.equal(m['spec'].externalTrafficPolicy, 'Local'),
    },
  ]);
});

describe('JSON pointer escaping', () => {
  test('~ becomes ~0 and / becomes ~1, in that order', () => {
    assert.equal(escapePointerSegment('a/b~c'), 'a~1b~0c');
    assert.equal(escapePointerSegment('~1'), '~01');
    assert.equal(toPointer(['metadata', 'annotations', 'sidecar.istio.io/interceptionMode']), '/metadata/annotations/sidecar.istio.io~1interceptionMode');
  });
});
