// runAudit() on a fake cluster: what the real API server cannot easily show (a refused fix, a kind
// the cluster does not serve, the version fallback) and the table. The real thing runs in
// test/e2e/audit.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatTable, remainingDrift, runAudit, type AuditCluster, type ListedObject } from '../../src/commands/audit-scan.js';
import type { AddOperation } from '../../src/mutation/json-patch.js';
import * as fx from '../fixtures/objects.js';

const OPTED_IN = { 'realip.io/inject': 'enabled' };

function fakeCluster(o: { objects: Record<string, ListedObject[]>; served?: string[]; namespaces?: string[]; refusePatch?: boolean; labels?: Record<string, string> }) {
  const labels = o.labels ?? OPTED_IN;
  const patches: { namespace: string; name: string; resourceVersion: string | undefined; ops: AddOperation[] }[] = [];
  const listed: string[] = [];
  const cluster: AuditCluster = {
    namespacesWithLabel: async () => (o.namespaces ?? ['demo']).map((name) => ({ name, labels })),
    namespace: async (name) => (name === 'demo' ? { name, labels } : undefined),
    servedVersion: async (kind, versions) => versions.find((v) => (o.served ?? ['v1/Service', 'apps/v1/Deployment', 'apps/v1/ReplicaSet']).includes(`${v}/${kind}`)),
    list: async (apiVersion, kind, namespace) => {
      listed.push(`${namespace}:${apiVersion}/${kind}`);
      return namespace === 'demo' ? (o.objects[kind] ?? []) : [];
    },
    patchService: async (namespace, name, resourceVersion, ops) => {
      if (o.refusePatch) throw new Error('HTTP 422: the server rejected our request');
      patches.push({ namespace, name, resourceVersion, ops });
    },
  };
  return { cluster, patches, listed };
}

const withMeta = (o: Record<string, any>, meta: Record<string, unknown>) => ({ ...o, metadata: { ...o['metadata'], ...meta } }) as ListedObject;
const options = (o: Partial<Parameters<typeof runAudit>[1]> = {}) => {
  const log: string[] = [];
  return { log, options: { labelPrefix: 'realip.io', fixServices: false, log: (l: string) => log.push(l), ...o } };
};

describe('runAudit', () => {
  test('a ReplicaSet controlled by a Deployment is left to the Deployment; a bare one drifts', async () => {
    const owned = withMeta(fx.replicaSet(), { name: 'web-abc', ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }] });
    const bare = withMeta(fx.replicaSet(), { name: 'bare' });
    const { cluster } = fakeCluster({ objects: { ReplicaSet: [owned, bare] } });
    const report = await runAudit(cluster, options().options);
    assert.deepEqual(report.drift.map((d) => d.name), ['bare']);
  });

  test('kinds the cluster does not serve are named and not listed; CronJob falls back to batch/v1beta1', async () => {
    const { cluster, listed } = fakeCluster({ objects: {}, served: ['v1/Service', 'batch/v1beta1/CronJob'] });
    const { log, options: o } = options();
    const report = await runAudit(cluster, o);
    assert.deepEqual(report.unservedKinds, ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'Job']);
    assert.deepEqual(listed, ['demo:v1/Service', 'demo:batch/v1beta1/CronJob']);
    assert.ok(log.some((l) => /not audited.*Deployment/.test(l)));
  });

  test('--fix services sends the patch with the audited resourceVersion, and never patches a workload', async () => {
    const svc = withMeta(fx.service('NodePort'), { resourceVersion: '42' });
    const { cluster, patches } = fakeCluster({ objects: { Service: [svc], Deployment: [fx.deployment() as ListedObject] } });
    const report = await runAudit(cluster, options({ fixServices: true }).options);
    assert.deepEqual(patches, [
      { namespace: 'demo', name: 'source-ip-app', resourceVersion: '42', ops: [{ op: 'add', path: '/spec/externalTrafficPolicy', value: 'Local' }] },
    ]);
    assert.deepEqual(report.drift.map((d) => [d.kind, d.action]), [['Service', 'fixed'], ['Deployment', 'rollout']]);
    assert.deepEqual(remainingDrift(report).map((d) => d.kind), ['Deployment']);
  });

  test('a refused fix is reported with the reason and counts as drift', async () => {
    const { cluster } = fakeCluster({ objects: { Service: [fx.service('LoadBalancer') as ListedObject] }, refusePatch: true });
    const report = await runAudit(cluster, options({ fixServices: true }).options);
    assert.equal(report.drift[0]!.action, 'fix-failed');
    assert.equal(report.drift[0]!.error, 'HTTP 422: the server rejected our request');
    assert.equal(remainingDrift(report).length, 1);
    assert.match(formatTable(report), /fix failed: HTTP 422/);
  });

  test('progress lines only from five namespaces on', async () => {
    const few = options();
    await runAudit(fakeCluster({ objects: {}, namespaces: ['a', 'b', 'c', 'd'] }).cluster, few.options);
    assert.ok(!few.log.some((l) => l.startsWith('scanning')));
    const many = options();
    await runAudit(fakeCluster({ objects: {}, namespaces: ['a', 'b', 'c', 'd', 'e'] }).cluster, many.options);
    assert.deepEqual(many.log.filter((l) => l.startsWith('scanning')).length, 5);
  });

  test('an unknown -n namespace is an error naming it', async () => {
    await assert.rejects(runAudit(fakeCluster({ objects: {} }).cluster, options({ namespace: 'nope' }).options), /namespace nope not found/);
  });

  test('Istio ambient namespace: no TPROXY drift, and the reason is in the report; a workload asking for a sidecar still drifts to TPROXY', async () => {
    const ambient = { ...OPTED_IN, 'istio.io/dataplane-mode': 'ambient' };
    const sidecar = withMeta(fx.deployment({ template: { ...fx.podTemplate(), metadata: { labels: { app: 'source-ip-app', 'sidecar.istio.io/inject': 'true' } } } }), { name: 'with-sidecar' });
    const { cluster } = fakeCluster({ objects: { Deployment: [fx.deployment() as ListedObject, sidecar] }, labels: ambient });
    const report = await runAudit(cluster, options().options);
    const [plain, asked] = report.drift;
    assert.deepEqual(plain!.changes, ['anti-affinity=preferred/hostname']);
    assert.ok(plain!.skips.some((s) => /Istio ambient mode \(istio\.io\/dataplane-mode=ambient\): no sidecar/.test(s)), plain!.skips.join(' | '));
    assert.ok(!formatTable(report).split('\n').find((l) => l.includes('source-ip-app'))!.includes('TPROXY'));
    assert.deepEqual(asked!.changes, ['anti-affinity=preferred/hostname', 'istio-interception=TPROXY']);
  });

  test('the table says when there is no drift', async () => {
    const report = await runAudit(fakeCluster({ objects: { Service: [fx.service('ClusterIP') as ListedObject] } }).cluster, options().options);
    assert.equal(formatTable(report), 'No drift in 1 namespace: every Service and workload is as the webhook would make it.\n');
  });
});
