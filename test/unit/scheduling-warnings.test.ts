// The node-aware warnings (Pending pods, rollout deadlock) and the Local-without-spread warning,
// through mutate() and admit(): each warning where its shape is seen, and its absence otherwise,
// in particular without node data.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admit } from '../../src/admission/admit.js';
import { parseReview } from '../../src/admission/review.js';
import { mutate, type MutationInput } from '../../src/mutation/mutate.js';
import { resolveIntOrPercent, selectorMatches, type NodeCounts } from '../../src/mutation/scheduling-warnings.js';
import * as fx from '../fixtures/objects.js';

type Json = Record<string, any>;
const REQUIRED = { 'realip.io/inject': 'enabled', 'realip.io/anti-affinity': 'required' };
const REQUIRED_ZONE = { ...REQUIRED, 'realip.io/anti-affinity-topology': 'zone' };
const HOST = 'kubernetes.io/hostname';
// The API server truncates each warning at 256 characters.
const MAX_WARNING = 255;

function warnings(object: Json, labels: Record<string, string>, nodes?: NodeCounts, extra: Partial<MutationInput> = {}): string[] {
  const result = mutate({
    kind: { group: fx.GROUPS[object['kind']]!, kind: object['kind'] },
    operation: 'CREATE',
    object,
    namespaceLabels: labels,
    labelPrefix: 'realip.io',
    nodes,
    ...extra,
  });
  for (const w of result.warnings) {
    assert.ok(w.length <= MAX_WARNING, `warning under 256 characters (${w.length}): ${w}`);
    assert.ok(!w.includes('\n'), `warning on one line: ${w}`);
  }
  return result.warnings;
}

const pending = (ws: string[]) => ws.filter((w) => /will stay Pending/.test(w));
const deadlock = (ws: string[]) => ws.filter((w) => /rollout will deadlock/.test(w));
const deployment = (spec: Json = {}) => fx.deployment({ spec });

describe('required anti-affinity: pods stay Pending', () => {
  test('replicas > schedulable nodes warns with the numbers', () => {
    const ws = pending(warnings(deployment({ replicas: 5 }), REQUIRED, { schedulable: 3, zones: 1 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /required anti-affinity on kubernetes\.io\/hostname .*replicas=5 > 3 schedulable nodes: 2 pod\(s\) will stay Pending/);
  });

  test('replicas > zones warns for zone topology, counted in zones, not nodes', () => {
    const ws = pending(warnings(deployment({ replicas: 4 }), REQUIRED_ZONE, { schedulable: 10, zones: 3 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /topology\.kubernetes\.io\/zone .*replicas=4 > 3 zones: 1 pod\(s\) will stay Pending/);
  });

  test('a StatefulSet is judged the same way', () => {
    assert.equal(pending(warnings(fx.statefulSet(), REQUIRED, { schedulable: 2, zones: 1 })).length, 1);
  });

  test('a required term the user wrote, selecting the own pods, counts too', () => {
    const template = fx.podTemplate({
      spec: {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [
              { labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['source-ip-app'] }] }, topologyKey: HOST },
            ],
          },
        },
      },
    });
    const object = fx.deployment({ template, spec: { replicas: 3 } });
    // Default namespace setting is preferred: only the user's required term constrains.
    assert.equal(pending(warnings(object, { 'realip.io/inject': 'enabled' }, { schedulable: 2, zones: 1 })).length, 1);
  });

  for (const [name, labels, nodes, replicas] of [
    ['replicas = nodes', REQUIRED, { schedulable: 3, zones: 1 }, 3],
    ['preferred anti-affinity (the default)', { 'realip.io/inject': 'enabled' }, { schedulable: 1, zones: 1 }, 5],
    ['anti-affinity none', { ...REQUIRED, 'realip.io/anti-affinity': 'none' }, { schedulable: 1, zones: 1 }, 5],
    ['zone topology on nodes with no zone labels', REQUIRED_ZONE, { schedulable: 2, zones: 0 }, 5],
    ['no node data', REQUIRED, undefined, 50],
  ] as const) {
    test(`no Pending warning: ${name}`, () => {
      assert.deepEqual(pending(warnings(deployment({ replicas }), labels, nodes)), []);
    });
  }

  test('a required term selecting other pods does not limit the own replicas', () => {
    const template = fx.podTemplate({
      spec: {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'noisy' } }, topologyKey: HOST }],
          },
        },
      },
    });
    const object = fx.deployment({ template, spec: { replicas: 3 } });
    assert.deepEqual(pending(warnings(object, { 'realip.io/inject': 'enabled' }, { schedulable: 1, zones: 1 })), []);
  });

  test('on UPDATE a scale alone (template unchanged) still warns', () => {
    const old = deployment({ replicas: 3, template: fx.podTemplate() });
    const scaled = deployment({ replicas: 6, template: fx.podTemplate() });
    const ws = warnings(scaled, REQUIRED, { schedulable: 3, zones: 1 }, { operation: 'UPDATE', oldObject: old });
    assert.equal(pending(ws).length, 0, 'preferred is what the template would get; it has no required term yet');
    const requiredTemplate = fx.podTemplate({
      spec: {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: HOST }],
          },
        },
      },
    });
    const before = fx.deployment({ template: requiredTemplate, spec: { replicas: 3 } });
    const after = fx.deployment({ template: requiredTemplate, spec: { replicas: 6 } });
    const again = warnings(after, REQUIRED, { schedulable: 3, zones: 1 }, { operation: 'UPDATE', oldObject: before });
    assert.equal(pending(again).length, 1);
  });
});

describe('required anti-affinity: rollout deadlock', () => {
  test('replicas = nodes with the default 25% surge (maxUnavailable rounds to 0) warns and suggests maxSurge 0', () => {
    const ws = deadlock(warnings(deployment({ replicas: 3 }), REQUIRED, { schedulable: 3, zones: 1 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /replicas=3 on 3 schedulable nodes and maxSurge=25%: a rollout will deadlock; set maxSurge: 0 and maxUnavailable: 1/);
  });

  test('strategy without rollingUpdate uses the API server defaults', () => {
    const object = deployment({ replicas: 2, strategy: { type: 'RollingUpdate' } });
    assert.equal(deadlock(warnings(object, REQUIRED, { schedulable: 2, zones: 1 })).length, 1);
  });

  test('an integer maxSurge counts; replicas = zones under zone topology', () => {
    const object = deployment({ replicas: 2, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } });
    const ws = deadlock(warnings(object, REQUIRED_ZONE, { schedulable: 9, zones: 2 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /zone with replicas=2 on 2 zones and maxSurge=1/);
  });

  for (const [name, spec, schedulable] of [
    ['maxSurge 0', { replicas: 3, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } } }, 3],
    ['maxSurge 0%', { replicas: 3, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '0%', maxUnavailable: 1 } } }, 3],
    // 25% of 4 is 1 unavailable: an old pod goes first and frees a node, so the rollout moves.
    ['maxUnavailable resolving to 1 (replicas 4, defaults)', { replicas: 4 }, 4],
    ['Recreate strategy', { replicas: 3, strategy: { type: 'Recreate' } }, 3],
    ['replicas < nodes', { replicas: 2 }, 3],
  ] as const) {
    test(`no deadlock warning: ${name}`, () => {
      assert.deepEqual(deadlock(warnings(deployment(spec), REQUIRED, { schedulable, zones: 1 })), []);
    });
  }

  test('no deadlock warning for a StatefulSet (no surge) nor without node data', () => {
    assert.deepEqual(deadlock(warnings(fx.statefulSet(), REQUIRED, { schedulable: 3, zones: 1 })), []);
    assert.deepEqual(deadlock(warnings(deployment({ replicas: 3 }), REQUIRED, undefined)), []);
  });
});

describe('externalTrafficPolicy Local in a namespace with anti-affinity none', () => {
  const NONE = { 'realip.io/inject': 'enabled', 'realip.io/anti-affinity': 'none' };
  const spreadWarning = (ws: string[]) => ws.filter((w) => /nodes with no local pod drop/.test(w));

  test('warns when the webhook sets Local, with no node data needed', () => {
    const ws = spreadWarning(warnings(fx.service('LoadBalancer'), NONE));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /externalTrafficPolicy=Local but namespace label realip\.io\/anti-affinity=none/);
  });

  test('warns when the Service already has Local and the namespace leaves the policy alone', () => {
    const object = fx.service('NodePort', { spec: { externalTrafficPolicy: 'Local' } });
    assert.equal(spreadWarning(warnings(object, { ...NONE, 'realip.io/external-traffic-policy': 'Cluster' })).length, 1);
  });

  for (const [name, object, labels] of [
    ['anti-affinity preferred', fx.service('NodePort'), { 'realip.io/inject': 'enabled' }],
    ['policy stays Cluster', fx.service('NodePort'), { ...NONE, 'realip.io/external-traffic-policy': 'Cluster' }],
    ['ClusterIP Service', fx.service('ClusterIP'), NONE],
    ['Service opted out', fx.service('NodePort', { metadata: { annotations: { 'realip.io/inject': 'disabled' } } }), NONE],
  ] as const) {
    test(`no warning: ${name}`, () => {
      assert.deepEqual(spreadWarning(warnings(object, labels)), []);
    });
  }
});

describe('helpers', () => {
  test('selectorMatches: matchLabels and each matchExpressions operator', () => {
    const labels = { app: 'web', tier: 'front' };
    assert.equal(selectorMatches({ matchLabels: { app: 'web' } }, labels), true);
    assert.equal(selectorMatches({ matchLabels: { app: 'db' } }, labels), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, labels), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, labels), false);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] }, labels), true);
    assert.equal(selectorMatches({ matchExpressions: [{ key: 'x', operator: 'Exists' }] }, labels), false);
    assert.equal(selectorMatches({}, labels), false, 'an empty selector is not read as "this workload"');
  });

  test('resolveIntOrPercent rounds surge up and unavailable down, and refuses what it cannot read', () => {
    assert.equal(resolveIntOrPercent('25%', 3, true), 1);
    assert.equal(resolveIntOrPercent('25%', 3, false), 0);
    assert.equal(resolveIntOrPercent(2, 3, true), 2);
    assert.equal(resolveIntOrPercent('two', 3, true), undefined);
  });
});

describe('admit() threads the node counts through', () => {
  const body = fx.review(deployment({ replicas: 4 }));
  const lookup = { found: true as const, labels: REQUIRED };
  const options = { labelPrefix: 'realip.io', failClosed: false };

  test('with counts the Pending warning is in the response', () => {
    const { review } = admit(parseReview(body), lookup, options, { schedulable: 2, zones: 1 });
    assert.ok(review.response.warnings?.some((w) => /replicas=4 > 2 schedulable nodes/.test(w)), JSON.stringify(review.response.warnings));
  });

  test('without counts it is absent', () => {
    const { review } = admit(parseReview(body), lookup, options);
    assert.ok(!review.response.warnings?.some((w) => /Pending|deadlock/.test(w)), JSON.stringify(review.response.warnings));
  });
});
