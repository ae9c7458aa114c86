// The disruption matrix: the chart's two replicas on two real nodes under a stream of creates
// (LoadBalancer Services and Deployments, 8 a second, through the API server), while one thing
// happens to them: a `helm upgrade` that changes the pod template, `kubectl drain` of a replica's
// node (the PDB holds the other), SIGKILL of one replica's process, both replicas gone for a
// minute. Counted from what the API server stored: created unmutated, repaired (a Service given
// Local afterwards, within 60 s), reported (a Deployment with an Event from the webhook), refused,
// and still silently unmutated. Prints the table docs/testing.md gives.
//   npm run test:node
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { pollUntil, type Obj } from '../e2e/webhook-harness.js';
import type { NodeCluster } from './node-cluster.js';
import {
  CHART_DIR,
  ENABLED_LABEL,
  NAMESPACE,
  RELEASE,
  TPROXY,
  countPerReplica,
  createStream,
  helm,
  missingWebhookOnNodes,
  reportedDeployments,
  startWebhookOnNodes,
  unmutatedAfterRepairs,
  waitRolledOut,
  webhookPods,
  type WebhookOnNodes,
} from './webhook-on-nodes.js';

const missing = await missingWebhookOnNodes();
if (missing.length > 0) {
  test('prerequisites of the disruption matrix', () => {
    throw new Error(missing.join('\n'));
  });
}

interface Row {
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

let running: WebhookOnNodes | undefined;
let nc: NodeCluster;
const rows: Row[] = [];

/** Runs `disrupt` under the stream in a fresh opted-in namespace; the Row of what was stored. */
async function runCase(name: string, ns: string, disrupt: () => Promise<number>): Promise<Row> {
  const c = nc.cluster;
  await c.kubectl(['create', 'namespace', ns]);
  await c.kubectl(['label', 'namespace', ns, ENABLED_LABEL]);
  await pollUntil(`the webhook to mutate a dry-run Deployment in ${ns}`, async () => {
    const { stdout } = await c.kubectl(['create', 'deployment', 'probe', '--image=registry.k8s.io/echoserver:1.4', '-n', ns, '--dry-run=server', '-o', 'json']);
    return (JSON.parse(stdout) as Obj).spec.template.metadata.annotations?.[TPROXY] === 'TPROXY' || undefined;
  }, { timeoutMs: 60_000 });

  const served = countPerReplica(c);
  const stream = createStream(c, ns);
  await sleep(3_000);
  const seconds = await disrupt();
  await waitRolledOut(c);
  await sleep(3_000);
  const result = await stream.stop();
  const perReplica = await served.stop();

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
  rows.push(row);
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

function table(): string {
  const head = '| case | creates | stored unmutated | repaired (Service) | reported (Deployment Event) | silently unmutated | refused | time | requests per replica |\n|---|---|---|---|---|---|---|---|---|';
  const lines = rows.map((r) =>
    `| ${r.name} | ${r.creates} | ${r.unmutatedAtCreate} | ${r.repaired} | ${r.reported} | ${r.silentlyUnmutated} | ${r.refused} | ${r.seconds.toFixed(1)} s | ${Object.values(r.served).join(' / ')} |`);
  return [head, ...lines].join('\n');
}

describe('the disruption matrix: two replicas on two real nodes under a stream of creates', { skip: missing.length > 0 && 'prerequisites missing (see above)' }, () => {
  before(async () => {
    running = await startWebhookOnNodes();
    nc = running.nc;
  }, { timeout: 30 * 60_000 });

  after(async () => {
    if (rows.length > 0) console.log(`# disruption matrix\n${table().replace(/^/gm, '# ')}`);
    await running?.stop();
  }, { timeout: 120_000 });

  test('helm upgrade that changes the pod template (a rollout): nothing stored unmutated', { timeout: 300_000 }, async () => {
    const row = await runCase('helm upgrade (rollout)', 'matrix-rollout', async () => {
      const started = performance.now();
      helm(nc.cluster, ['upgrade', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--reuse-values', '--set', 'logLevel=warn']);
      await waitRolledOut(nc.cluster);
      return (performance.now() - started) / 1000;
    });
    assert.equal(row.silentlyUnmutated, 0);
  });

  test('kubectl drain of a replica\'s node (the PDB keeps the other): nothing stored unmutated', { timeout: 300_000 }, async () => {
    await spreadAgain();
    const node = (await webhookPods(nc.cluster))[0]!.spec.nodeName as string;
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
    const row = await runCase('SIGKILL of one replica', 'matrix-sigkill', async () => {
      const pod = (await webhookPods(nc.cluster))[0]!;
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
    });
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
});
