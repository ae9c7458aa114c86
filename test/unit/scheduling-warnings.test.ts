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
    assert.match(w, /^realip-webhook: \S/, 'a warning names the webhook');
  }
  return result.warnings;
}

const pending = (ws: string[]) => ws.filter((w) => /will stay Pending/.test(w));
const deadlock = (ws: string[]) => ws.filter((w) => /rollout will deadlock/.test(w));
const deployment = (spec: Json = {}) => fx.deployment({ spec });
/** A pod template with the user's own required anti-affinity terms. */
const withRequired = (...terms: Json[]) =>
  fx.podTemplate({ spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: terms } } } });
const OWN = { matchLabels: { app: 'source-ip-app' } };

describe('required anti-affinity: pods stay Pending', () => {
  test('replicas > schedulable nodes warns with the numbers', () => {
    const ws = pending(warnings(deployment({ replicas: 5 }), REQUIRED, { schedulable: 3, zones: 1 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /required anti-affinity on kubernetes\.io\/hostname fits 1 pod per node, but replicas=5 > 3 schedulable nodes: 2 pod\(s\) will stay Pending/);
  });

  test('replicas > zones warns for zone topology, counted in zones, not nodes', () => {
    const ws = pending(warnings(deployment({ replicas: 4 }), REQUIRED_ZONE, { schedulable: 10, zones: 3 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /topology\.kubernetes\.io\/zone fits 1 pod per zone, but replicas=4 > 3 zones: 1 pod\(s\) will stay Pending/);
  });

  test('no schedulable node at all (every node cordoned): every replica stays Pending', () => {
    const ws = pending(warnings(deployment({ replicas: 2 }), REQUIRED, { schedulable: 0, zones: 0 }));
    assert.equal(ws.length, 1);
    assert.match(ws[0]!, /replicas=2 > 0 schedulable nodes: 2 pod\(s\) will stay Pending/);
  });

  // Seen before validation: a template may lack metadata or spec, or have node affinity only.
  for (const [name, template] of [
    ['a template without metadata nor spec', {}],
    ['a template with node affinity only', fx.podTemplate({ spec: { affinity: { nodeAffinity: {} } } })],
  ] as const) {
    test(`${name} is judged by the term being added`, () => {
      assert.equal(pending(warnings(fx.deployment({ template, spec: { replicas: 3 } }), REQUIRED, { schedulable: 2, zones: 1 })).length, 1);
    });
  }

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

  for (const [name, term] of [
    ['a required term without labelSelector selects no pod', { topologyKey: HOST }],
    ['a required term on a key of unknown count (a rack) is not guessed at', { labelSelector: OWN, topologyKey: 'example.com/rack' }],
  ] as const) {
    test(`no Pending warning: ${name}`, () => {
      const object = fx.deployment({ template: withRequired(term), spec: { replicas: 5 } });
      assert.deepEqual(pending(warnings(object, { 'realip.io/inject': 'enabled' }, { schedulable: 1, zones: 1 })), []);
    });
  }

  // Required is asked for, but nothing is added: no Pending warning for a term the pods do not get.
  for (const [name, object] of [
    ['the workload has no selector', deployment({ replicas: 5, selector: undefined })],
    [
      "the user's preferred term on the same key stays instead",
      fx.deployment({
        spec: { replicas: 5 },
        template: fx.podTemplate({
          spec: { affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { labelSelector: OWN, topologyKey: HOST } }] } } },
        }),
      }),
    ],
  ] as const) {
    test(`no Pending warning when ${name}`, () => {
      assert.deepEqual(pending(warnings(object, REQUIRED, { schedulable: 1, zones: 1 })), []);
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

  // The API server defaults these before admission; the offline `mutate` command sees them unset.
  for (const [name, strategy] of [
    ['strategy without rollingUpdate', { type: 'RollingUpdate' }],
    ['rollingUpdate without type', { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }],
    ['no strategy at all', undefined],
  ] as const) {
    test(`${name}: the API server defaults apply`, () => {
      const object = deployment({ replicas: 2, strategy });
      assert.equal(deadlock(warnings(object, REQUIRED, { schedulable: 2, zones: 1 })).length, 1);
    });
  }

  test('no replicas field counts as 1: on a single node the rollout deadlocks', () => {
    const object = deployment({ replicas: undefined });
    assert.match(deadlock(warnings(object, REQUIRED, { schedulable: 1, zones: 1 }))[0]!, /replicas=1 on 1 schedulable nodes/);
  });

  test('a Deployment scaled to 0 has no pod to place: no warning of any kind about nodes', () => {
    const object = deployment({ replicas: 0, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } });
    assert.deepEqual(warnings(object, REQUIRED, { schedulable: 0, zones: 0 }).filter((w) => /Pending|deadlock/.test(w)), []);
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
    // Both resolve to 0: the controller then takes one pod down first, and the rollout moves.
    ['maxSurge 0% and a maxUnavailable that rounds down to 0', { replicas: 3, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '0%', maxUnavailable: '10%' } } }, 3],
    ['an unreadable maxSurge is not guessed at', { replicas: 3, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 'lots', maxUnavailable: 0 } } }, 3],
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

describe('kinds without replicas to spread', () => {
  // A DaemonSet's own required term, judged as if it had replicas, would "leave a pod Pending" on a
  // cluster with no schedulable node.
  const daemonSet = () => {
    const object = fx.daemonSet();
    object['spec'].template = withRequired({ labelSelector: OWN, topologyKey: HOST });
    return object;
  };
  const NO_NODES = { schedulable: 0, zones: 0 };

  test('a DaemonSet gets no node warnings, on CREATE nor on an UPDATE that keeps the template', () => {
    assert.deepEqual(warnings(daemonSet(), REQUIRED, NO_NODES).filter((w) => /Pending|deadlock/.test(w)), []);
    const relabelled = daemonSet();
    relabelled['metadata'].labels = { tier: 'agent' };
    assert.deepEqual(warnings(relabelled, REQUIRED, NO_NODES, { operation: 'UPDATE', oldObject: daemonSet() }), []);
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
  test('selectorMatches: matchLabels and each matchExpressions operator, as Kubernetes label selectors', () => {
    const labels = { app: 'web', tier: 'front' };
    const expression = (key: string, operator: string, values?: string[]) => ({ matchExpressions: [{ key, operator, ...(values ? { values } : {}) }] });
    for (const [selector, matches] of [
      [{ matchLabels: { app: 'web' } }, true],
      [{ matchLabels: { app: 'db' } }, false],
      [expression('tier', 'In', ['back', 'front']), true],
      [expression('tier', 'In', ['back']), false],
      [expression('x', 'In', ['front']), false],
      [expression('tier', 'NotIn', ['front']), false],
      [expression('tier', 'NotIn', ['back']), true],
      [expression('x', 'NotIn', ['back']), true],
      [expression('tier', 'Exists'), true],
      [expression('x', 'Exists'), false],
      [expression('x', 'DoesNotExist'), true],
      [expression('tier', 'DoesNotExist'), false],
      // Gt and Lt belong to node selectors; a label selector with them matches nothing.
      [expression('tier', 'Gt', ['1']), false],
      [{}, false],
      [undefined, false],
    ] as const) {
      assert.equal(selectorMatches(selector, labels), matches, JSON.stringify(selector));
    }
  });

  test('resolveIntOrPercent rounds surge up and unavailable down, and refuses what it cannot read', () => {
    assert.equal(resolveIntOrPercent('25%', 3, true), 1);
    assert.equal(resolveIntOrPercent('25%', 3, false), 0);
    assert.equal(resolveIntOrPercent(2, 3, true), 2);
    assert.equal(resolveIntOrPercent(0, 3, true), 0);
    // An IntOrString is a whole number or a string "N%", nothing else.
    for (const value of ['two', '3', 1.5, -1, 'x25%', '25%x', ['25%'], null]) {
      assert.equal(resolveIntOrPercent(value, 3, true), undefined, JSON.stringify(value));
    }
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
