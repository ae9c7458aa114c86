// The disruption matrix: the chart's two replicas on two real nodes under a stream of creates
// (LoadBalancer Services and Deployments, 8 a second, through the API server), while one thing
// happens to them: a `helm upgrade` that changes the pod template, `kubectl drain` of a replica's
// node (the PDB holds the other), SIGKILL of one replica's process, both replicas gone for a
// minute, and SIGKILL again with failClosed. Counted from what the API server stored: created unmutated, repaired (a Service given
// Local afterwards, within 60 s), reported (a Deployment with an Event from the webhook), refused,
// and still silently unmutated. Prints the table docs/testing.md gives. Run by node.test.ts, on
// its nodes, after the assertions of a normal start.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { pollUntil, type Obj } from '../e2e/webhook-harness.js';
import type { NodeCluster } from './node-cluster.js';
import {
  CHART_DIR,
  answered,
  NAMESPACE,
  RELEASE,
  countPerReplica,
  createStream,
  helm,
  optedInNamespace,
  reportedDeployments,
  unmutatedAfterRepairs,
  waitRolledOut,
  webhookPods,
} from './webhook-on-nodes.js';

export interface Row {
  name: string;
  creates: number;
  unmutatedAtCreate: number;
  repaired: number;
  reported: number;
  silentlyUnmutated: number;
  refused: number;
  /** What the case measures: the rollout, the drain, the recovery or the outage, in seconds. */
  seconds: number;
  served: Record<string, number>;
}

let nc: NodeCluster;
const rows: Row[] = [];

/** Adds a row to the table printed at the end (the certificate rotation of node.test.ts adds one). */
export function recordRow(row: Row): void {
  rows.push(row);
}

/** Runs `disrupt` under the stream in a fresh opted-in namespace; the Row of what was stored. */
async function runCase(name: string, ns: string, disrupt: () => Promise<number>): Promise<Row> {
  const c = nc.cluster;
  await optedInNamespace(c, ns);

  const served = countPerReplica(c);
  const stream = createStream(c, ns);
  let seconds: number;
  let result: Awaited<ReturnType<typeof stream.stop>>;
  let perReplica: Record<string, number>;
  try {
    await sleep(3_000);
    seconds = await disrupt();
    await waitRolledOut(c);
    await sleep(3_000);
  } finally {
    result = await stream.stop();
    perReplica = await served.stop();
  }

  const left = await unmutatedAfterRepairs(c, ns);
  const reported = await reportedDeployments(c, ns, left.deployments);
  const atCreate = result.unmutatedAtCreate.services.length + result.unmutatedAtCreate.deployments.length;
  const row: Row = {
    name,
    creates: result.services + result.deployments,
    unmutatedAtCreate: atCreate,
    repaired: result.unmutatedAtCreate.services.length - left.services.length,
    reported: reported.length,
    silentlyUnmutated: left.services.length + left.deployments.length - reported.length,
    refused: Object.values(result.refused).reduce((a, b) => a + b, 0),
    seconds,
    served: perReplica,
  };
  console.log(`# ${name}: ${JSON.stringify(row)}${Object.keys(result.refused).length ? ` refused: ${JSON.stringify(result.refused)}` : ''}`);
  recordRow(row);
  // Each LoadBalancer Service holds two node ports and a share of kube-proxy's rules: gone
  // before the next case.
  await c.kubectl(['delete', 'namespace', ns, '--timeout=180s']);
  return row;
}

/** Deletes one replica so its replacement goes to the emptier node: the next case starts spread. */
async function spreadAgain(): Promise<void> {
  const pods = await webhookPods(nc.cluster);
  if (new Set(pods.map((p) => p.spec.nodeName)).size > 1) return;
  await nc.cluster.kubectl(['delete', 'pod', '-n', NAMESPACE, pods[0]!.metadata.name]);
  await pollUntil('the replicas on both nodes again', async () => {
    const now = await webhookPods(nc.cluster);
    return now.length === 2 && new Set(now.map((p) => p.spec.nodeName)).size === 2 && now.every((p) => p.status?.containerStatuses?.[0]?.ready) ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500 });
}

/**
 * The replica that has answered the most: the API server keeps its connections to one replica,
 * so disrupting the other would test nothing.
 */
async function busiestReplica(): Promise<Obj> {
  const pods = await webhookPods(nc.cluster);
  const counts = await Promise.all(pods.map((p) => answered(p.status.podIP).catch(() => -1)));
  return pods[counts.indexOf(Math.max(...counts))]!;
}

/** SIGKILL of the busiest replica's process; the seconds until the kubelet has it Ready again. */
async function killBusiestReplica(): Promise<number> {
  const pod = await busiestReplica();
  const node = nc.nodes.find((n) => n.name === pod.spec.nodeName)!;
  const pid = await node.containerPid(pod.status.containerStatuses[0].containerID);
  const started = performance.now();
  process.kill(pid, 'SIGKILL');
  await pollUntil(`${pod.metadata.name} restarted and Ready`, async () => {
    const now = (await webhookPods(nc.cluster)).find((p) => p.metadata.name === pod.metadata.name);
    const s = now?.status?.containerStatuses?.[0];
    return s && s.restartCount > pod.status.containerStatuses[0].restartCount && s.ready ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 100 });
  return (performance.now() - started) / 1000;
}

/** The rows as the Markdown table docs/testing.md gives. */
export function matrixTable(): string {
  if (rows.length === 0) return '';
  const head = '| case | creates | stored unmutated | repaired (Service) | reported (Deployment Event) | silently unmutated | refused | time | requests per replica |\n|---|---|---|---|---|---|---|---|---|';
  const lines = rows.map((r) =>
    `| ${r.name} | ${r.creates} | ${r.unmutatedAtCreate} | ${r.repaired} | ${r.reported} | ${r.silentlyUnmutated} | ${r.refused} | ${r.seconds.toFixed(1)} s | ${Object.entries(r.served).map(([pod, n]) => `${pod.replace(/^.*-/, '')} ${n}`).join(', ')} |`);
  return [head, ...lines].join('\n');
}

/** The matrix's tests, on the chart installed on `nodes()` (its replicas Ready). */
export function describeDisruptionMatrix(nodes: () => NodeCluster): void {
  describe('the disruption matrix: two replicas on two real nodes under a stream of creates', () => {

    test('helm upgrade that changes the pod template (a rollout): nothing stored unmutated', { timeout: 300_000 }, async () => {
      nc = nodes();
      const row = await runCase('helm upgrade (rollout)', 'matrix-rollout', async () => {
        const started = performance.now();
        await helm(nc.cluster, ['upgrade', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--reuse-values', '--set', 'logLevel=warn']);
        await waitRolledOut(nc.cluster);
        return (performance.now() - started) / 1000;
      });
      assert.equal(row.silentlyUnmutated, 0);
    });

    test('kubectl drain of a replica\'s node (the PDB keeps the other): nothing stored unmutated', { timeout: 300_000 }, async () => {
      await spreadAgain();
      const node = (await busiestReplica()).spec.nodeName as string;
      const row = await runCase(`kubectl drain ${node}`, 'matrix-drain', async () => {
        const started = performance.now();
        await nc.cluster.kubectl(['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=180s']);
        await waitRolledOut(nc.cluster);
        return (performance.now() - started) / 1000;
      });
      await nc.cluster.kubectl(['uncordon', node]);
      assert.equal(row.silentlyUnmutated, 0);
    });

    test('SIGKILL of one replica\'s process: nothing left silently unmutated', { timeout: 300_000 }, async () => {
      await spreadAgain();
      const row = await runCase('SIGKILL of one replica', 'matrix-sigkill', killBusiestReplica);
      assert.equal(row.silentlyUnmutated, 0);
    });

    test('both replicas gone for a minute: what was admitted unmutated is repaired or reported once a replica is back', { timeout: 400_000 }, async () => {
      const row = await runCase('both replicas gone for 60 s', 'matrix-outage', async () => {
        const started = performance.now();
        await nc.cluster.kubectl(['scale', 'deployment', RELEASE, '-n', NAMESPACE, '--replicas=0']);
        await pollUntil('no webhook pod left', async () => ((await webhookPods(nc.cluster)).length === 0 ? true : undefined), { timeoutMs: 90_000, intervalMs: 250 });
        await sleep(60_000);
        await nc.cluster.kubectl(['scale', 'deployment', RELEASE, '-n', NAMESPACE, '--replicas=2']);
        await waitRolledOut(nc.cluster);
        return (performance.now() - started) / 1000;
      });
      assert.ok(row.unmutatedAtCreate > 0, 'the API server failed open during the outage (failurePolicy Ignore)');
      assert.equal(row.silentlyUnmutated, 0);
    });

    test('failClosed: SIGKILL of one replica stores nothing unmutated; each create is mutated or refused', { timeout: 300_000 }, async () => {
      await helm(nc.cluster, ['upgrade', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--reuse-values', '--set', 'failClosed=true']);
      await waitRolledOut(nc.cluster);
      await spreadAgain();
      const row = await runCase('failClosed, SIGKILL of one replica', 'matrix-fail-closed', killBusiestReplica);
      assert.equal(row.unmutatedAtCreate, 0);
    });
  });
}
