// What the webhook's anti-affinity does to real scheduling: the real kube-scheduler and
// kube-controller-manager (deployment and replicaset controllers only) against the e2e suite's
// kube-apiserver, with the built webhook registered as shipped and watching nodes. Two
// schedulable Node objects and no kubelet: pods are bound, never run. No controller that needs a
// kubelet runs, so nothing marks the nodes unreachable.
//
// The nodes differ in size, and the pods request CPU and memory: left to itself the scheduler
// puts both replicas on the big node (the control case), which is what shows that the spread
// under `preferred` comes from the webhook's anti-affinity and not from the scheduler's defaults.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KUBERNETES_BIN_DIR, INSTALL_HINT, isExecutable, startProcess, stopProcess, tail, type Proc } from '../e2e/cluster.js';
import { atLeast, release } from '../kubernetes/release.js';
import { getJson, manifestStream, missingPrerequisites, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import { ENABLED, namespace, startClusterWithWebhook, type ClusterWithWebhook } from './cluster-with-webhook.js';

const HOSTNAME = 'kubernetes.io/hostname';
const BIG = 'node-big';
const SMALL = 'node-small';
const SCHEDULER = `${KUBERNETES_BIN_DIR}/kube-scheduler`;
const CONTROLLER_MANAGER = `${KUBERNETES_BIN_DIR}/kube-controller-manager`;
const SCHEDULED_TIMEOUT_MS = 60_000;

const missing = await missingPrerequisites();
for (const bin of [SCHEDULER, CONTROLLER_MANAGER]) if (!(await isExecutable(bin))) missing.push(`${bin} not found: ${INSTALL_HINT}`);
if (missing.length > 0) {
  test('prerequisites of the scheduling suite', () => {
    throw new Error(missing.join('\n'));
  });
}

function node(name: string, cpu: string, memory: string): Obj {
  const now = new Date().toISOString();
  const resources = { cpu, memory, pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    // No zone label, on purpose: the scheduler's default topology spread then ignores these
    // nodes, so only the pods' own anti-affinity can spread them.
    metadata: { name, labels: { [HOSTNAME]: name } },
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'no kubelet: a Node object only', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  };
}

function deployment(name: string, ns: string, replicas: number): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.2', resources: { requests: { cpu: '500m', memory: '64Mi' } } }] },
      },
    },
  };
}

/**
 * The scheduler's system default topology spread (maxSkew 3 on kubernetes.io/hostname) spreads
 * two replicas over these nodes by itself on current releases, where 1.20 ignored nodes with no
 * zone label. It is turned off so that only the pods' own anti-affinity can spread them; the
 * scheduler is otherwise as shipped.
 */
async function withoutDefaultSpread(dir: string, kubeconfig: string): Promise<string[]> {
  if (!atLeast('1.25')) return [];
  const file = join(dir, 'kube-scheduler.yaml');
  await writeFile(file, JSON.stringify({
    apiVersion: 'kubescheduler.config.k8s.io/v1',
    kind: 'KubeSchedulerConfiguration',
    clientConnection: { kubeconfig },
    leaderElection: { leaderElect: false },
    profiles: [{ schedulerName: 'default-scheduler', pluginConfig: [{ name: 'PodTopologySpread', args: { defaultingType: 'List', defaultConstraints: [] } }] }],
  }));
  return ['--config', file];
}

interface Placement {
  /** Node names of the bound pods, sorted. */
  bound: string[];
  /** Pods the scheduler tried and could not place. */
  unschedulable: number;
}

describe(`real kube-scheduler ${release.version} bindings under the webhook's anti-affinity (two Nodes, no kubelet)`, {
  skip: missing.length > 0 && 'prerequisites missing (see above)',
  timeout: 240_000,
}, () => {
  let control: ClusterWithWebhook | undefined;
  let dir: string | undefined;
  const controlPlane: Proc[] = [];

  const create = (...objects: Obj[]) => control!.create(...objects);

  async function logs(): Promise<string> {
    const tails = await Promise.all(controlPlane.map(async (p) => `--- ${p.name} ---\n${await tail(p.log, 15)}`));
    if (control) tails.push(`--- webhook ---\n${await control.webhook.logTail(15)}`);
    return tails.join('\n');
  }

  /** Waits until the scheduler has decided on every replica (bound, or tried and unschedulable). */
  async function placement(ns: string, app: string, replicas: number): Promise<Placement> {
    try {
      return await pollUntil(`the scheduler to decide on ${replicas} pods of ${ns}/${app}`, async () => {
        for (const p of controlPlane) if (p.done) throw new Error(`${p.name} exited`);
        const pods = (await getJson(control!.cluster, ['pods', '-n', ns, '-l', `app=${app}`])).items as Obj[];
        const unschedulable = pods.filter((p) =>
          (p.status.conditions as Obj[] | undefined)?.some((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable'));
        const bound = pods.filter((p) => p.spec.nodeName).map((p) => p.spec.nodeName as string).sort();
        return pods.length === replicas && bound.length + unschedulable.length === replicas ? { bound, unschedulable: unschedulable.length } : undefined;
      }, { timeoutMs: SCHEDULED_TIMEOUT_MS, intervalMs: 300 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await logs()}`, { cause: err });
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'realip-scheduling-'));
    control = await startClusterWithWebhook(dir, ['--watch-nodes']);
    const { cluster } = control;
    await create(node(BIG, '64', '256Gi'), node(SMALL, '2', '4Gi'));
    // The API server taints every new Node not-ready (admission plugin TaintNodesByCondition);
    // the node lifecycle controller would lift it once the kubelet reports Ready. Lift it here.
    for (const n of [BIG, SMALL]) await cluster.kubectl(['taint', 'node', n, 'node.kubernetes.io/not-ready:NoSchedule-']);
    await create(namespace('plain'), namespace('preferred', ENABLED), namespace('required', { ...ENABLED, 'realip.io/anti-affinity': 'required' }));

    // Port 0 for both servers: nothing listens anywhere (the insecure --port is gone from 1.24);
    // leader election off: one of each.
    const ports = atLeast('1.24') ? ['--secure-port', '0'] : ['--port', '0', '--secure-port', '0'];
    const common = ['--kubeconfig', cluster.kubeconfig, '--leader-elect=false', ...ports];
    controlPlane.push(startProcess('kube-scheduler', SCHEDULER, dir, [...common, ...(await withoutDefaultSpread(dir, cluster.kubeconfig))]));
    controlPlane.push(startProcess('kube-controller-manager', CONTROLLER_MANAGER, dir, [...common, '--controllers', 'deployment,replicaset']));

    // The webhook counts nodes from its watch: wait until it has seen both.
    await pollUntil('the webhook to count 2 schedulable nodes', async () => {
      const { stderr } = await control!.cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { stdin: manifestStream(deployment('probe', 'required', 3)) });
      return /> 2 schedulable nodes/.test(stderr) ? true : undefined;
    });
  }, { timeout: 120_000 });

  after(async () => {
    await Promise.all(controlPlane.map(stopProcess));
    await control?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('control, namespace not opted in: the scheduler piles both replicas on the big node', async () => {
    await create(deployment('web', 'plain', 2));
    assert.deepEqual(await placement('plain', 'web', 2), { bound: [BIG, BIG], unschedulable: 0 });
  });

  test('preferred (the default): the two replicas are spread one per node', async () => {
    await create(deployment('web', 'preferred', 2));
    const d = await getJson(control!.cluster, ['deployment', 'web', '-n', 'preferred']);
    assert.ok(d.spec.template.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution, 'preferred anti-affinity set by the webhook');
    assert.deepEqual(await placement('preferred', 'web', 2), { bound: [BIG, SMALL], unschedulable: 0 });
  });

  test('required with 4 replicas on 2 nodes: one pod per node, and exactly the surplus the warning predicted stays Pending', async () => {
    const stderr = await create(deployment('web', 'required', 4));
    const predicted = /replicas=4 > 2 schedulable nodes: (\d+) pod\(s\) will stay Pending/.exec(stderr);
    assert.ok(predicted, `kubectl shows the webhook's Pending warning; stderr was: ${stderr}`);
    assert.deepEqual(await placement('required', 'web', 4), { bound: [BIG, SMALL], unschedulable: Number(predicted[1]) });
    assert.equal(Number(predicted[1]), 2);
  });
});
