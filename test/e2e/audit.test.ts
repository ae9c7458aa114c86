// `realip-webhook audit` against a real kube-apiserver (test/e2e/cluster.ts): objects created
// before their namespace opted in, drift found and not found, -o json and table, exit codes, and
// --fix services patching Services in place while leaving every workload untouched.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster } from './cluster.js';

type Json = Record<string, any>;
const repo = fileURLToPath(new URL('../../', import.meta.url));
const TPROXY = 'sidecar.istio.io/interceptionMode';

let cluster: Cluster;

function audit(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'src', 'cli.ts'), 'audit', '--kubeconfig', cluster.kubeconfig, ...args], {
      cwd: repo,
      // No KUBECONFIG of the machine running the tests may leak in.
      env: { PATH: process.env['PATH'], HOME: cluster.dir },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function auditJson(...args: string[]) {
  const r = await audit('-o', 'json', ...args);
  assert.ok(r.code === 0 || r.code === 1, `exit 0 or 1, got ${r.code}: ${r.stderr}`);
  return { ...r, report: JSON.parse(r.stdout) as Json };
}

const apply = (yaml: string) => cluster.kubectl(['apply', '-f', '-'], { stdin: yaml });
const getJson = async (args: string[]) => JSON.parse((await cluster.kubectl([...args, '-o', 'json'])).stdout) as Json;
const key = (d: Json) => `${d['namespace']}/${d['kind']}/${d['name']}`;

function namespace(name: string, optedIn: boolean): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${name}
${optedIn ? '  labels: {realip.io/inject: enabled}\n' : ''}---
`;
}

function service(ns: string, name: string, type: string, extra = ''): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}${extra}}
spec:
  type: ${type}
  selector: {app: ${name}}
  ports: [{port: 80, targetPort: 8080}]
---
`;
}

const POD = `    metadata:
      labels: {app: APP}
    spec:
      containers: [{name: app, image: registry.k8s.io/echoserver:1.4}]
`;
function workload(ns: string, kind: string, name: string, extra = ''): string {
  const apiVersion = kind === 'Job' ? 'batch/v1' : 'apps/v1';
  const pod = POD.replace('APP', name).replace('containers:', kind === 'Job' ? 'restartPolicy: Never\n      containers:' : 'containers:');
  const selector = kind === 'Job' ? '' : `  selector: {matchLabels: {app: ${name}}}\n`;
  const serviceName = kind === 'StatefulSet' ? `  serviceName: ${name}\n` : '';
  return `apiVersion: ${apiVersion}
kind: ${kind}
metadata: {name: ${name}, namespace: ${ns}${extra}}
spec:
${selector}${serviceName}  template:
${pod}---
`;
}

/** A CronJob in the newest batch version the cluster serves (v1beta1 before Kubernetes 1.21). */
async function cronJob(ns: string, name: string): Promise<string> {
  const batchV1 = JSON.parse((await cluster.kubectl(['get', '--raw', '/apis/batch/v1'])).stdout) as { resources: { kind: string }[] };
  const apiVersion = batchV1.resources.some((r) => r.kind === 'CronJob') ? 'batch/v1' : 'batch/v1beta1';
  return `apiVersion: ${apiVersion}
kind: CronJob
metadata: {name: ${name}, namespace: ${ns}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: ${name}}}
        spec:
          restartPolicy: OnFailure
          containers: [{name: app, image: registry.k8s.io/echoserver:1.4}]
---
`;
}

// What a Deployment looks like once the webhook has mutated it: nothing left to change.
const COMPLIANT_DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: done, namespace: clean}
spec:
  selector: {matchLabels: {app: done}}
  template:
    metadata:
      labels: {app: done}
      annotations: {${TPROXY}: TPROXY}
    spec:
      containers: [{name: app, image: registry.k8s.io/echoserver:1.4}]
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector: {matchLabels: {app: done}}
              topologyKey: kubernetes.io/hostname
---
`;

before(async () => {
  cluster = await startCluster();
  await apply(
    ['audited', 'clean', 'services-only', 'extra-1', 'extra-2'].map((n) => namespace(n, true)).join('') + namespace('plain', false),
  );
  const deployment = await (async () => {
    await apply(workload('audited', 'Deployment', 'web'));
    return getJson(['get', 'deployment', 'web', '-n', 'audited']);
  })();
  const cron = await cronJob('audited', 'nightly');
  await apply(cron);
  const cronObject = await getJson(['get', 'cronjob', 'nightly', '-n', 'audited']);
  const owner = (o: Json) =>
    `, ownerReferences: [{apiVersion: ${o['apiVersion']}, kind: ${o['kind']}, name: ${o['metadata'].name}, uid: ${o['metadata'].uid}, controller: true}]`;
  await apply(
    [
      service('audited', 'web', 'LoadBalancer'),
      service('audited', 'internal', 'ClusterIP'),
      workload('audited', 'StatefulSet', 'db'),
      workload('audited', 'DaemonSet', 'agent'),
      workload('audited', 'ReplicaSet', 'bare-rs'),
      // Made by the Deployment's controller: audited through the Deployment, not on its own.
      workload('audited', 'ReplicaSet', 'web-5d8f7c', owner(deployment)),
      workload('audited', 'Job', 'once'),
      workload('audited', 'Job', 'nightly-27000000', owner(cronObject)),
      service('plain', 'web', 'NodePort'),
      service('clean', 'local', 'NodePort').replace('type: NodePort', 'type: NodePort\n  externalTrafficPolicy: Local'),
      service('clean', 'opted-out', 'NodePort', ', annotations: {realip.io/inject: disabled}'),
      COMPLIANT_DEPLOYMENT,
      service('services-only', 'edge', 'NodePort'),
    ].join(''),
  );
});

after(async () => {
  await cluster?.stop();
});

describe('realip-webhook audit (real kube-apiserver)', { timeout: 180_000 }, () => {
  test('no drift: -n clean exits 0 with an empty drift list', async () => {
    const { code, report } = await auditJson('-n', 'clean');
    assert.equal(code, 0);
    assert.deepEqual(report['drift'], []);
    assert.deepEqual(report['namespaces'], [{ name: 'clean', optedIn: true }]);
  });

  test('drift found: every opted-in namespace, exit 1, owned objects and other namespaces left out', async () => {
    const { code, report, stderr } = await auditJson('--all-opted-in');
    assert.equal(code, 1);
    const found = Object.fromEntries((report['drift'] as Json[]).map((d) => [key(d), d]));
    assert.deepEqual(Object.keys(found).sort(), [
      'audited/CronJob/nightly',
      'audited/DaemonSet/agent',
      'audited/Deployment/web',
      'audited/Job/once',
      'audited/ReplicaSet/bare-rs',
      'audited/Service/web',
      'audited/StatefulSet/db',
      'services-only/Service/edge',
    ]);
    assert.deepEqual(found['audited/Service/web']!['changes'], ['external-traffic-policy=Local']);
    assert.equal(found['audited/Service/web']!['action'], 'fixable');
    assert.deepEqual(found['audited/Deployment/web']!['changes'], ['anti-affinity=preferred/hostname', 'istio-interception=TPROXY']);
    assert.equal(found['audited/Deployment/web']!['action'], 'rollout');
    assert.deepEqual(found['audited/CronJob/nightly']!['changes'], ['istio-interception=TPROXY']);
    assert.match(found['audited/CronJob/nightly']!['apiVersion'], /^batch\/v1(beta1)?$/);
    assert.deepEqual(found['audited/Job/once']!['patch'], [
      { op: 'add', path: `/spec/template/metadata/annotations`, value: { [TPROXY]: 'TPROXY' } },
    ]);
    assert.deepEqual(report['unservedKinds'], []);
    assert.deepEqual(
      (report['namespaces'] as Json[]).map((n) => n['name']),
      ['audited', 'clean', 'extra-1', 'extra-2', 'services-only'],
    );
    // Five namespaces: progress is reported on stderr, never on stdout.
    assert.match(stderr, /audit: scanning namespace 1\/5: audited/);
    assert.match(stderr, /audit: scanning namespace 5\/5: services-only/);
  });

  test('-o table: one row per object with the change, workloads flagged as needing a rollout', async () => {
    const r = await audit('-n', 'audited', '-o', 'table');
    assert.equal(r.code, 1);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^NAMESPACE\s+KIND\s+NAME\s+WOULD CHANGE\s+NOTE$/);
    assert.ok(lines.some((l) => /^audited\s+Service\s+web\s+external-traffic-policy=Local\s+restarts no pods: --fix services applies it$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^audited\s+Deployment\s+web\s+anti-affinity=preferred\/hostname,istio-interception=TPROXY\s+applying it would trigger a rollout/.test(l)), r.stdout);
    assert.match(r.stdout, /7 object\(s\) in 1 namespace differ from what the webhook would make\./);
  });

  test('a namespace that is not opted in: exit 0, a note on stderr; a missing one: exit 2', async () => {
    const plain = await auditJson('-n', 'plain');
    assert.equal(plain.code, 0);
    assert.deepEqual(plain.report['drift'], []);
    assert.match(plain.stderr, /namespace plain is not opted in \(no label realip\.io\/inject=enabled\)/);
    const missing = await audit('-n', 'nope');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /namespace nope not found/);
  });

  test('usage errors exit 2', async () => {
    assert.equal((await audit('--fix', 'deployments')).code, 2);
    assert.equal((await audit('-n', 'a', '--all-opted-in')).code, 2);
    assert.equal((await audit('-o', 'yaml')).code, 2);
  });

  test('--fix services patches the Services in place and leaves every workload as it was', async () => {
    const workloads = ['deployment/web', 'statefulset/db', 'daemonset/agent', 'replicaset/bare-rs', 'job/once', 'cronjob/nightly'];
    const before = await Promise.all(workloads.map((w) => getJson(['get', w, '-n', 'audited'])));
    const serviceBefore = await getJson(['get', 'service', 'web', '-n', 'audited']);

    const { code, report } = await auditJson('-n', 'audited', '--fix', 'services');
    assert.equal(code, 1, 'workload drift remains');
    const actions = Object.fromEntries((report['drift'] as Json[]).map((d) => [key(d), d['action']]));
    assert.equal(actions['audited/Service/web'], 'fixed');
    for (const w of ['Deployment/web', 'StatefulSet/db', 'DaemonSet/agent', 'ReplicaSet/bare-rs', 'Job/once', 'CronJob/nightly']) {
      assert.equal(actions[`audited/${w}`], 'rollout', w);
    }

    const serviceAfter = await getJson(['get', 'service', 'web', '-n', 'audited']);
    assert.equal(serviceAfter['spec'].externalTrafficPolicy, 'Local');
    assert.deepEqual(serviceAfter['spec'].ports, serviceBefore['spec'].ports, 'node ports kept');
    assert.equal(serviceAfter['spec'].clusterIP, serviceBefore['spec'].clusterIP);
    // The API server allocates healthCheckNodePort itself once a LoadBalancer is Local.
    assert.ok(Number.isInteger(serviceAfter['spec'].healthCheckNodePort), 'healthCheckNodePort allocated by the API server');

    const after = await Promise.all(workloads.map((w) => getJson(['get', w, '-n', 'audited'])));
    after.forEach((o, i) => {
      assert.equal(o['metadata'].resourceVersion, before[i]!['metadata'].resourceVersion, `${workloads[i]} not written`);
    });

    const again = await auditJson('-n', 'audited');
    assert.ok(!(again.report['drift'] as Json[]).some((d) => d['kind'] === 'Service'), 'no Service drift left');
  });

  test('--fix services in a namespace with only Service drift leaves no drift: exit 0, then 0 again', async () => {
    const fixed = await auditJson('-n', 'services-only', '--fix', 'services');
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual((fixed.report['drift'] as Json[]).map((d) => [d['name'], d['action']]), [['edge', 'fixed']]);
    const again = await auditJson('-n', 'services-only');
    assert.equal(again.code, 0);
    assert.deepEqual(again.report['drift'], []);
  });
});
