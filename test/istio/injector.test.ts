// What Istio's own sidecar injector makes of what the webhook writes, on the live path (see
// mesh-lab.ts): the Pods asserted on are those the ReplicaSet controller created, or the bare
// Pods as stored, after every mutating webhook and Pod Security admission ran.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Obj } from '../e2e/webhook-harness.js';
import { atLeast, release } from '../kubernetes/release.js';
import { istioVersion } from './istio.js';
import { missingLabPrerequisites, startIstioLab, type IstioLab } from './mesh-lab.js';
import {
  EXPECTED,
  interceptionFields,
  markdownTable,
  OLD_KUBELET,
  podSecurityViolation,
  whatIstioInjects,
  type Outcome,
  type Scenario,
  type Sidecar,
} from './what-istio-injects.js';

const INTERCEPTION = 'sidecar.istio.io/interceptionMode';
const missing = await missingLabPrerequisites();
if (missing.length > 0) {
  test('prerequisites of the Istio suite', () => {
    throw new Error(missing.join('\n'));
  });
}
// Istio 1.31 supports Kubernetes 1.30 and newer; native sidecars and Pod Security need it too.
const tooOld = !atLeast('1.30') && `Istio needs Kubernetes 1.30 or newer; KUBE_VERSION=${release.minor} (run with KUBE_VERSION=1.37)`;
const version = missing.length === 0 ? await istioVersion() : 'not built';

describe(`Istio ${version} sidecar injector on Kubernetes ${release.version}, after the webhook`, {
  skip: tooOld || (missing.length > 0 && 'prerequisites missing (see above)'),
  timeout: 600_000,
}, () => {
  let lab: IstioLab | undefined;
  let dir: string | undefined;
  const scenarios = new Map<string, Scenario>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'realip-istio-'));
    lab = await startIstioLab(dir, OLD_KUBELET);
    for (const s of await whatIstioInjects(lab)) scenarios.set(s.key, s);
    // The table docs/istio.md shows, in the test output too.
    console.log(markdownTable([...scenarios.values()]));
  }, { timeout: 540_000 });

  after(async () => {
    await lab?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function admitted(key: string): Extract<Outcome, { kind: 'pod' }> {
    const s = scenarios.get(key);
    assert.ok(s, `scenario ${key} ran`);
    assert.equal(s.outcome.kind, 'pod', `${key}: the Pod was admitted (${s.outcome.kind === 'rejected' ? s.outcome.reason : ''})`);
    return s.outcome as Extract<Outcome, { kind: 'pod' }>;
  }
  function rejected(key: string): Extract<Outcome, { kind: 'rejected' }> {
    const s = scenarios.get(key);
    assert.ok(s, `scenario ${key} ran`);
    assert.equal(s.outcome.kind, 'rejected', `${key}: the Pod was rejected`);
    return s.outcome as Extract<Outcome, { kind: 'rejected' }>;
  }
  function assertSidecar(sidecar: Sidecar | undefined, mode: 'TPROXY' | 'REDIRECT', shape: { native: boolean; init: string }) {
    assert.ok(sidecar, 'Istio injected a sidecar');
    assert.deepEqual(interceptionFields(sidecar), EXPECTED[mode]);
    assert.deepEqual({ native: sidecar.native, init: sidecar.init }, shape);
  }
  const classic = { native: false, init: 'istio-init' };
  const native = { native: true, init: 'istio-init' };
  const annotationOf = (o: Obj | undefined) => o?.metadata?.annotations?.[INTERCEPTION] as string | undefined;

  test('istiod listens on loopback only, and talks to loopback only (the API server, and the API server to its webhook)', async () => {
    const { listening, peers } = await lab!.istiod.sockets();
    assert.ok(listening.length >= 5, `istiod's listeners: ${listening.join(', ')}`);
    assert.deepEqual(listening.filter((l) => !l.startsWith('127.0.0.1:')), []);
    assert.ok(peers.length > 0, 'istiod holds its connection to the API server');
    assert.deepEqual(peers.filter((p) => !p.startsWith('127.0.0.1:')), []);
  });

  // [test name, scenario, where the webhook's annotation is read, its value there, the sidecar's mode and shape]
  const cases: [string, string, 'template' | 'pod', string | undefined, 'TPROXY' | 'REDIRECT', { native: boolean; init: string }][] = [
    ['opted in, Deployment: the template gets TPROXY and the Pod its ReplicaSet created has a TPROXY sidecar', 'optedIn', 'template', 'TPROXY', 'TPROXY', classic],
    ['not opted in, Deployment: REDIRECT', 'plain', 'template', undefined, 'REDIRECT', classic],
    ['opted in, bare Pod: TPROXY, because 00-realip-webhook runs before istio-sidecar-injector', 'bare', 'pod', 'TPROXY', 'TPROXY', classic],
    // The webhook ran (the annotation is there), but after Istio had injected.
    ['the same bare Pod with the configuration named zz-realip-webhook (after Istio): the annotation is there, the sidecar is REDIRECT', 'bareAfterIstio', 'pod', 'TPROXY', 'REDIRECT', classic],
    ['a template that already says REDIRECT keeps it: REDIRECT', 'userRedirect', 'template', 'REDIRECT', 'REDIRECT', classic],
    ['native sidecar asked for by the template (sidecar.istio.io/nativeSidecar): TPROXY on the istio-proxy init container', 'nativeAnnotation', 'template', 'TPROXY', 'TPROXY', native],
    ['native sidecar turned on by istiod itself, every Node a 1.37 kubelet: TPROXY on the istio-proxy init container', 'nativeNode', 'template', 'TPROXY', 'TPROXY', native],
    ['ambient namespace, template asks for a sidecar (sidecar.istio.io/inject: "true"): TPROXY', 'ambientSidecar', 'template', 'TPROXY', 'TPROXY', classic],
    ['Istio CNI, opted in: TPROXY, with istio-validation as the init container', 'cni', 'template', 'TPROXY', 'TPROXY', { native: true, init: 'istio-validation' }],
  ];
  for (const [name, key, where, annotation, mode, shape] of cases) {
    test(name, () => {
      const o = admitted(key);
      assert.equal(annotationOf(where === 'pod' ? o.pod : o.template), annotation);
      if (where === 'template') {
        assert.ok(o.pod.metadata.ownerReferences?.some((r: Obj) => r.kind === 'ReplicaSet'), 'created by the ReplicaSet controller');
      }
      assertSidecar(o.sidecar, mode, shape);
    });
  }

  test('ambient namespace: no TPROXY on the template and no sidecar on the Pod', () => {
    const o = admitted('ambient');
    assert.equal(annotationOf(o.template), undefined);
    assert.equal(o.sidecar, undefined);
    assert.doesNotMatch(o.warnings, /TPROXY/);
  });

  test('Pod Security baseline without Istio CNI: the webhook skips TPROXY and warns, and Pod Security still rejects istio-init (NET_ADMIN): baseline needs Istio CNI, TPROXY or not', () => {
    const o = rejected('baselineNoCni');
    assert.match(o.warnings, /TPROXY not set: namespace enforces pod-security baseline/);
    assert.match(podSecurityViolation(o.reason) ?? o.reason, /container "istio-init" must not include "NET_ADMIN"/);
  });

  test('Istio CNI, Pod Security baseline, Deployment: the webhook warns and skips TPROXY; the Pod is admitted with a REDIRECT sidecar', () => {
    const o = admitted('baseline');
    assert.match(o.warnings, /TPROXY not set: namespace enforces pod-security baseline and the Istio proxy would need NET_ADMIN/);
    assert.equal(annotationOf(o.template), undefined);
    assert.ok(o.sidecar, 'a sidecar');
    // With CNI the REDIRECT proxy asks for nothing baseline forbids.
    assert.deepEqual({ ...interceptionFields(o.sidecar), init: o.sidecar.init }, { ...EXPECTED.REDIRECT, init: 'istio-validation' });
  });

  test('control: the same namespace, TPROXY written by hand: Pod Security rejects the Pod, naming NET_ADMIN on istio-proxy', () => {
    const o = rejected('baselineByHand');
    assert.match(podSecurityViolation(o.reason) ?? o.reason, /container "istio-proxy" must not include "NET_ADMIN"/);
  });
});
