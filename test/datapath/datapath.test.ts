// The outcome the project exists for, observed on the wire: a client connects through a real
// kube-proxy on either node to a pod that reports the source address it sees. Services are
// created without externalTrafficPolicy through the real API server, with the built webhook
// registered as shipped. Needs root and network namespaces (.ci/run has both); skips saying so
// otherwise. Missing binaries fail with the command that installs them, as in the e2e suite.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Obj } from '../e2e/webhook-harness.js';
import { release } from '../kubernetes/release.js';
import { CLIENT_IP, NODE_IPS, PROXY_MODES, missingDatapathPrerequisites, startLab, type Lab, type ProxyMode } from './lab.js';
import { whyNoNetns } from './netns.js';
import { NAMESPACE_LABEL, NS, whatThePodSees, type Measurement, type Row } from './what-the-pod-sees.js';

const DROPPED = 'nothing (dropped)';
const NO_HEALTH_CHECK = '-';

const noNetns = await whyNoNetns();
const missing = noNetns ? [] : await missingDatapathPrerequisites();
if (missing.length > 0) {
  test('prerequisites of the datapath suite', () => {
    throw new Error(missing.join('\n'));
  });
}

if (!PROXY_MODES.includes('nftables')) console.log(`# kube-proxy ${release.version} has no nftables mode (GA in 1.33): iptables only`);

for (const mode of PROXY_MODES) suite(mode);

function suite(mode: ProxyMode): void {
  const title = `what the pod sees through a real kube-proxy ${release.version} (${mode} mode, two nodes, pod on node1)`;
  // A skipped test, not a skipped suite: the runner's summary then counts it as skipped.
  if (noNetns) test(title, { skip: noNetns }, () => {});
  else describe(title, { skip: missing.length > 0 && 'prerequisites missing (see above)', timeout: 240_000 }, () => {
    let lab: Lab | undefined;
    let measured: Measurement;

    before(async () => {
      lab = await startLab(mode);
      try {
        measured = await whatThePodSees(lab);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
      }
    }, { timeout: 180_000 });

    after(async () => {
      await lab?.stop();
    });

    const rowsOf = (namespace: string, service: Row['service']) =>
      measured.rows.filter((r) => r.namespace === namespace && r.service === service).map(({ node, policy, podSees, healthCheck }) => ({ node, policy, podSees, healthCheck }));

    test('opted-in NodePort: the webhook set Local; through node1 the pod sees the client, node2 drops', () => {
      assert.match(measured.createWarnings[`${NS.optedIn}/web-nodeport`]!, /Warning: realip-webhook: set spec\.externalTrafficPolicy=Local/);
      assert.deepEqual(rowsOf(NAMESPACE_LABEL.optedIn, 'NodePort'), [
        { node: 'node1', policy: 'Local', podSees: CLIENT_IP, healthCheck: NO_HEALTH_CHECK },
        { node: 'node2', policy: 'Local', podSees: DROPPED, healthCheck: NO_HEALTH_CHECK },
      ]);
    });

    test('opted-in LoadBalancer: the pod sees the client through node1; the health check takes node2 out (503)', () => {
      assert.deepEqual(rowsOf(NAMESPACE_LABEL.optedIn, 'LoadBalancer'), [
        { node: 'node1', policy: 'Local', podSees: CLIENT_IP, healthCheck: '200, localEndpoints 1' },
        { node: 'node2', policy: 'Local', podSees: DROPPED, healthCheck: '503, localEndpoints 0' },
      ]);
    });

    test('namespace not opted in: Cluster, the pod sees the IP of whichever node the client went through', () => {
      assert.equal(measured.createWarnings[`${NS.plain}/web-nodeport`], '', 'the webhook is not called for this namespace');
      for (const type of ['NodePort', 'LoadBalancer'] as const) {
        assert.deepEqual(rowsOf(NAMESPACE_LABEL.plain, type), [
          { node: 'node1', policy: 'Cluster', podSees: NODE_IPS.node1, healthCheck: NO_HEALTH_CHECK },
          { node: 'node2', policy: 'Cluster', podSees: NODE_IPS.node2, healthCheck: NO_HEALTH_CHECK },
        ], type);
      }
    });

    test('a Service older than the opt-in shows node IPs until `audit --fix services`; then the pod sees the client', () => {
      assert.deepEqual(rowsOf(NAMESPACE_LABEL.lateBefore, 'LoadBalancer'), [
        { node: 'node1', policy: 'Cluster', podSees: NODE_IPS.node1, healthCheck: NO_HEALTH_CHECK },
        { node: 'node2', policy: 'Cluster', podSees: NODE_IPS.node2, healthCheck: NO_HEALTH_CHECK },
      ]);
      const { code, report, stderr } = measured.audit;
      assert.equal(code, 0, `audit exits 0 once the only drift is fixed: ${stderr}`);
      assert.deepEqual((report['drift'] as Obj[]).map((d) => [d['kind'], d['name'], d['action']]), [['Service', 'web-lb', 'fixed']]);
      assert.deepEqual(rowsOf(NAMESPACE_LABEL.lateFixed, 'LoadBalancer'), [
        { node: 'node1', policy: 'Local', podSees: CLIENT_IP, healthCheck: '200, localEndpoints 1' },
        { node: 'node2', policy: 'Local', podSees: DROPPED, healthCheck: '503, localEndpoints 0' },
      ]);
    });

    test('`explain` says "node IP" exactly where the pod saw a node IP, "client IP" where it saw the client', () => {
      const nodeIps: string[] = Object.values(NODE_IPS);
      const services = new Map(measured.rows.map((r) => [`${r.namespace} ${r.service}`, measured.rows.filter((o) => o.namespace === r.namespace && o.service === r.service)]));
      assert.equal(services.size, 6);
      for (const [which, rows] of services) {
        const { explainSays, explainExit } = rows[0]!;
        const sawNode = rows.some((r) => nodeIps.includes(r.podSees));
        const sawClient = rows.some((r) => r.podSees === CLIENT_IP);
        assert.notEqual(sawNode, sawClient, `${which}: the wire shows one or the other`);
        assert.equal(/\bnode IP\b/.test(explainSays), sawNode, `${which}: ${explainSays}`);
        assert.equal(/\bclient IP\b/.test(explainSays), sawClient, `${which}: ${explainSays}`);
        // Where the pod saw the client, node2 dropped the traffic: explain calls that one backend.
        if (sawClient) assert.match(explainSays, /, at risk at spread: every ready endpoint is on node node1/, which);
        assert.equal(explainExit, 1, which);
      }
    });
  });
}
