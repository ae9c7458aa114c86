// The pure parts of serve's repair: which stored objects slipped through (repairDecision), when a
// namespace's labels were last set (labelsSetAt, from managedFields), and the Event's name and
// text. The repairer itself runs against a real API server in test/e2e/repair.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AUDITED_KINDS, type AuditedKind, type ListedObject } from '../../src/commands/audit-scan.js';
import { labelsSetAt } from '../../src/namespaces/kube-namespace-cache.js';
import { eventName, repairEvent, unmutatedMessage } from '../../src/repair/repair-event.js';
import { repairDecision, type RepairNamespace } from '../../src/repair/slipped-through.js';
import * as fx from '../fixtures/objects.js';

const kind = (k: string): AuditedKind => AUDITED_KINDS.find((a) => a.kind === k)!;
const OPTED_IN_AT = Date.parse('2026-12-06T10:00:00Z');
const ns = (o: Partial<RepairNamespace> = {}): RepairNamespace => ({
  name: 'demo',
  labels: { 'realip.io/inject': 'enabled' },
  labelsSetAt: OPTED_IN_AT,
  ...o,
});
const created = (o: Record<string, any>, at: string, meta: Record<string, unknown> = {}) =>
  ({ ...o, metadata: { ...o['metadata'], namespace: 'demo', uid: 'u-1', creationTimestamp: at, ...meta } }) as ListedObject;
const AFTER = '2026-12-06T10:00:01Z';

describe('repairDecision', () => {
  test('a LoadBalancer Service created after the opt-in with Cluster is patched', () => {
    const d = repairDecision(created(fx.service('LoadBalancer'), AFTER), kind('Service'), 'v1', ns(), 'realip.io');
    assert.equal(d.action, 'patch');
    assert.deepEqual(d.action === 'patch' && d.drift.patch, [{ op: 'add', path: '/spec/externalTrafficPolicy', value: 'Local' }]);
  });

  test('a Deployment created after the opt-in without the changes is reported, never patched', () => {
    const d = repairDecision(created(fx.deployment(), AFTER), kind('Deployment'), 'apps/v1', ns(), 'realip.io');
    assert.equal(d.action, 'report');
    assert.deepEqual(d.action === 'report' && d.drift.changes, ['anti-affinity=preferred/hostname', 'istio-interception=TPROXY']);
  });

  test('created in the same second as the labels, or before: left alone (audit reports it)', () => {
    for (const at of ['2026-12-06T10:00:00Z', '2026-12-06T09:59:59Z']) {
      const d = repairDecision(created(fx.service('NodePort'), at), kind('Service'), 'v1', ns(), 'realip.io');
      assert.equal(d.action, 'none', at);
      assert.match(d.action === 'none' ? d.reason : '', /created before/);
    }
  });

  test('nothing to change, not opted in, or opt-in time unknown: nothing done', () => {
    const local = created(fx.service('LoadBalancer', { spec: { externalTrafficPolicy: 'Local' } }), AFTER);
    assert.equal(repairDecision(local, kind('Service'), 'v1', ns(), 'realip.io').action, 'none');
    const clusterIp = created(fx.service('ClusterIP'), AFTER);
    assert.equal(repairDecision(clusterIp, kind('Service'), 'v1', ns(), 'realip.io').action, 'none');
    const lb = created(fx.service('LoadBalancer'), AFTER);
    assert.equal(repairDecision(lb, kind('Service'), 'v1', ns({ labels: { 'realip.io/inject': 'disabled' } }), 'realip.io').action, 'none');
    const unknown = repairDecision(lb, kind('Service'), 'v1', ns({ labelsSetAt: undefined }), 'realip.io');
    assert.equal(unknown.action, 'none');
    assert.match(unknown.action === 'none' ? unknown.reason : '', /managedFields/);
    const noTimestamp = repairDecision(created(fx.service('LoadBalancer'), ''), kind('Service'), 'v1', ns(), 'realip.io');
    assert.equal(noTimestamp.action, 'none');
  });

  test('a ReplicaSet owned by a Deployment is the Deployment\'s; an opted-out Service is left alone', () => {
    const owned = created(fx.replicaSet(), AFTER, { ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }] });
    assert.equal(repairDecision(owned, kind('ReplicaSet'), 'apps/v1', ns(), 'realip.io').action, 'none');
    const optedOut = created(fx.service('LoadBalancer'), AFTER, { annotations: { 'realip.io/inject': 'disabled' } });
    assert.equal(repairDecision(optedOut, kind('Service'), 'v1', ns(), 'realip.io').action, 'none');
  });
});

describe('labelsSetAt', () => {
  const entry = (manager: string, time: string, labels: string[]) => ({
    manager,
    operation: 'Update',
    time,
    fieldsV1: { 'f:metadata': { 'f:labels': Object.fromEntries([['.', {}], ...labels.map((l) => [`f:${l}`, {}])]) } },
  });

  test('the latest time of a manager that owns one of the prefix\'s labels; other managers do not count', () => {
    const namespace = {
      metadata: {
        managedFields: [
          entry('kubectl-create', '2026-12-06T09:00:00Z', ['team']),
          entry('kubectl-label', '2026-12-06T10:00:00Z', ['realip.io/inject']),
          entry('helm', '2026-12-06T10:30:00Z', ['realip.io/anti-affinity']),
          entry('argocd', '2026-12-06T11:00:00Z', ['other.io/x']),
        ],
      },
    };
    assert.equal(labelsSetAt(namespace as any, 'realip.io'), Date.parse('2026-12-06T10:30:00Z'));
    assert.equal(labelsSetAt(namespace as any, 'example.com'), undefined);
  });

  test('no managedFields: unknown', () => {
    assert.equal(labelsSetAt({ metadata: {} }, 'realip.io'), undefined);
  });
});

describe('the Event', () => {
  const target = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'demo', name: 'web', uid: 'a8f0-uid' };

  test('named after the uid: the same on every replica, another for another object', () => {
    assert.equal(eventName(target), eventName({ ...target }));
    assert.notEqual(eventName(target), eventName({ ...target, uid: 'other' }));
    assert.match(eventName(target), /^web\.realip-[0-9a-f]{10}$/);
  });

  test('a long name is cut to a valid one', () => {
    const name = eventName({ ...target, name: `${'a'.repeat(229)}-b${'c'.repeat(20)}` });
    assert.ok(name.length <= 253, String(name.length));
    assert.match(name, /^a+\.realip-[0-9a-f]{10}$/);
  });

  test('says what is missing and how to apply it, on the object it names', () => {
    const message = unmutatedMessage({ kind: 'Deployment', name: 'web', changes: ['anti-affinity=preferred'] });
    assert.match(message, /lacks anti-affinity=preferred/);
    assert.match(message, /kubectl rollout restart deployment\/web/);
    assert.match(unmutatedMessage({ kind: 'Job', name: 'j', changes: ['istio-interception=TPROXY'] }), /recreate/);
    const event = repairEvent(target, 'Warning', 'AdmittedUnmutated', message, 'pod-1', new Date('2026-12-06T10:00:00.123Z'));
    assert.deepEqual(event.involvedObject, { ...target, resourceVersion: undefined });
    assert.equal(event.firstTimestamp, '2026-12-06T10:00:00Z');
    assert.equal(event.metadata.namespace, 'demo');
  });
});
