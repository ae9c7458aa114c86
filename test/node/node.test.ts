// The webhook as Pods on real nodes: the image test:image builds, installed with the chart as
// shipped (only the image set) and with overlays/plain, on two nodes of a kubelet and a
// containerd each (node-cluster.ts), called by the API server through its Service; between the
// two, the disruption matrix (disruption.ts).
//   npm run test:node (as root; needs test/kubernetes/install-1.37.sh, test/node/install-node.sh,
//   test/helm/install-helm.sh, buildah and debootstrap)
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { getJson, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import { REPO_ROOT, copyManifests } from '../support/repo.js';
import { describeDisruptionMatrix, matrixTable, recordRow } from './disruption.js';
import type { NodeCluster } from './node-cluster.js';
import {
  ENABLED_LABEL,
  IMAGE_VALUES,
  NAMESPACE,
  RELEASE,
  TPROXY,
  createStream,
  countPerReplica,
  helm,
  missingWebhookOnNodes,
  optedInNamespace,
  isReady,
  startWebhookOnNodes,
  unmutatedAfterRepairs,
  waitRolledOut,
  webhookPods,
  type WebhookOnNodes,
} from './webhook-on-nodes.js';

const missing = await missingWebhookOnNodes();
if (missing.length > 0) {
  test('prerequisites of test:node', () => {
    throw new Error(missing.join('\n'));
  });
}

let running: WebhookOnNodes | undefined;
let nc: NodeCluster;
let work: string;

/** The webhook container's host pid, found through its node's containerd. */
async function webhookPid(pod: Obj): Promise<number> {
  const node = nc.nodes.find((n) => n.name === pod.spec.nodeName)!;
  const status = (pod.status.containerStatuses as Obj[]).find((s) => s.name === 'webhook')!;
  return node.containerPid(status.containerID);
}

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return out;
}

/** The fingerprint of the certificate a Pod serves on 8443. */
function servedFingerprint(podIp: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: podIp, port: 8443, rejectUnauthorized: false, servername: `${RELEASE}.${NAMESPACE}.svc` }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256;
      s.destroy();
      if (fp) resolve(fp);
      else reject(new Error('no peer certificate'));
    });
    s.setTimeout(2_000, () => s.destroy(new Error('TLS connect timed out')));
    s.on('error', reject);
  });
}

const skip = missing.length > 0 && 'prerequisites missing (see above)';

// One cluster and one image for the whole file: the normal start, the matrix, then overlays/plain.
before(async () => {
  if (skip) return;
  running = await startWebhookOnNodes();
  ({ nc, work } = running);
}, { timeout: 30 * 60_000 });

after(async () => {
  const table = matrixTable();
  if (table) console.log(`# disruption matrix\n${table.replace(/^/gm, '# ')}`);
  await running?.stop();
}, { timeout: 120_000 });

describe('the webhook as Pods on two real nodes (kubelet 1.37, containerd, the image, the chart)', { skip }, () => {
  test('both replicas are Ready, one on each node (the chart\'s preferred anti-affinity)', async () => {
    const pods = await webhookPods(nc.cluster);
    assert.equal(pods.length, 2);
    assert.ok(pods.every(isReady));
    assert.deepEqual(pods.map((p) => p.spec.nodeName).sort(), ['node1', 'node2']);
  });

  test('the container runs as uid 1000 with no capabilities, NoNewPrivs, a seccomp filter and a read-only root (read from the host\'s /proc)', async () => {
    for (const pod of await webhookPods(nc.cluster)) {
      const pid = await webhookPid(pod);
      const s = procStatus(pid);
      const where = `${pod.metadata.name} (pid ${pid} on ${pod.spec.nodeName})`;
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /^node\0/, `${where} is the image's node process`);
      assert.deepEqual(s.Uid!.split(/\s+/), ['1000', '1000', '1000', '1000'], `${where} Uid`);
      assert.deepEqual(s.Gid!.split(/\s+/), ['1000', '1000', '1000', '1000'], `${where} Gid`);
      for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(BigInt(`0x${s[cap]}`), 0n, `${where} ${cap}`);
      assert.equal(s.NoNewPrivs, '1', `${where} NoNewPrivs`);
      assert.equal(s.Seccomp, '2', `${where} Seccomp (2: filter)`);
      const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/');
      assert.ok(root, `${where} has a / mount`);
      assert.ok(root[5]!.split(',').includes('ro'), `${where} / is mounted read-only: ${root[5]}`);
    }
  });

  test('the webhook reads namespaces with its ServiceAccount\'s token (in-cluster credentials)', async () => {
    for (const pod of await webhookPods(nc.cluster)) {
      const pid = await webhookPid(pod);
      // Where the kubelet mounted it, as the container sees it (the image links /var/run to /run).
      const mount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')[4]).find((m) => m?.endsWith('/secrets/kubernetes.io/serviceaccount'));
      assert.ok(mount, `${pod.metadata.name} has the ServiceAccount volume mounted`);
      const token = await readFile(`/proc/${pid}/root${mount}/token`, 'utf8');
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Obj;
      assert.equal(claims.sub, `system:serviceaccount:${NAMESPACE}:${RELEASE}`);
      assert.equal(claims['kubernetes.io'].pod.name, pod.metadata.name, 'a token bound to the Pod');
      // Ready only once its first namespace list (made with that token) has arrived.
      assert.ok(isReady(pod), `${pod.metadata.name} is Ready`);
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.ok(env.some((e) => e.startsWith('KUBERNETES_SERVICE_HOST=10.0.')), 'the kubernetes Service is in the environment');
    }
    const lists = await nc.cluster.kubectl(['auth', 'can-i', 'list', 'namespaces', `--as=system:serviceaccount:${NAMESPACE}:${RELEASE}`]);
    assert.equal(lists.stdout.trim(), 'yes');
  });

  test('the readiness probe records no failure at a normal start (Events of the webhook Pods)', async () => {
    const events = ((await getJson(nc.cluster, ['events', '-n', NAMESPACE])).items as Obj[]).filter((e) => e.involvedObject?.kind === 'Pod');
    const unhealthy = events.filter((e) => e.reason === 'Unhealthy' || /probe failed/i.test(e.message ?? ''));
    assert.deepEqual(unhealthy.map((e) => `${e.involvedObject.name}: ${e.message} (x${e.count ?? 1})`), []);
    assert.ok(events.some((e) => e.reason === 'Started'), 'the Events were recorded at all (Started is there)');
  });

  test('kubectl create deployment / expose through the Service: anti-affinity and TPROXY, Local, with the warnings', async () => {
    const c = nc.cluster;
    const ns = 'node-walkthrough';
    const config = await getJson(c, ['mutatingwebhookconfiguration', `00-${RELEASE}`]);
    for (const w of config.webhooks as Obj[]) assert.deepEqual(w.clientConfig.service?.name, RELEASE, `${w.name} calls the Service`);
    await optedInNamespace(c, ns);
    const created = await c.kubectl(['create', 'deployment', 'source-ip-app', '--image=registry.k8s.io/echoserver:1.4', '--replicas=0', '-n', ns]);
    const d = await getJson(c, ['deployment', 'source-ip-app', '-n', ns]);
    assert.equal(d.spec.template.metadata.annotations[TPROXY], 'TPROXY');
    assert.deepEqual(d.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution, [
      { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: 'kubernetes.io/hostname' } },
    ]);
    assert.match(created.stderr, /^Warning: realip-webhook: added preferred pod anti-affinity/m);
    assert.match(created.stderr, /^Warning: realip-webhook: set sidecar\.istio\.io\/interceptionMode=TPROXY/m);
    const exposed = await c.kubectl(['expose', 'deployment', 'source-ip-app', '--port=8080', '--type=LoadBalancer', '-n', ns]);
    const svc = await getJson(c, ['service', 'source-ip-app', '-n', ns]);
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    assert.match(exposed.stderr, /^Warning: realip-webhook: set spec\.externalTrafficPolicy=Local/m);
  });
});

if (!skip) describeDisruptionMatrix(() => nc);

// After the matrix: a CA patched in by kubectl conflicts with helm upgrade's server-side apply.
describe('certificate rotation through the Secret volume', { skip }, () => {
  test('a new certificate in the Secret reaches both replicas through the volume (the kubelet\'s symlink swap) with no failed or unmutated admission', { timeout: 240_000 }, async (t) => {
    const c = nc.cluster;
    const ns = 'node-rotation';
    await optedInNamespace(c, ns);
    const secretName = `${RELEASE}-tls`;
    const secret = await getJson(c, ['secret', secretName, '-n', NAMESPACE]);
    const oldCa = Buffer.from(secret.data['ca.crt'], 'base64').toString('utf8');
    const pods = await webhookPods(c);
    const oldFingerprints = await Promise.all(pods.map((p) => servedFingerprint(p.status.podIP)));

    // A new CA and serving pair from the script users run; the webhook configuration trusts both
    // CAs first, as a rotation must, so no request fails while the replicas pick it up one by one.
    const dir = join(work, 'rotated');
    await mkdir(dir, { recursive: true });
    execFileSync(join(REPO_ROOT, 'certs', 'generate.sh'), ['--out', dir, '--service', RELEASE, '--namespace', NAMESPACE], { stdio: 'ignore' });
    const newCa = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const bundle = Buffer.from(`${oldCa.trim()}\n${newCa.trim()}\n`).toString('base64');
    const config = await getJson(c, ['mutatingwebhookconfiguration', `00-${RELEASE}`]);
    const patch = (config.webhooks as Obj[]).map((_, i) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle }));
    await c.kubectl(['patch', 'mutatingwebhookconfiguration', `00-${RELEASE}`, '--type=json', '-p', JSON.stringify(patch)]);
    await new Promise((r) => setTimeout(r, 2_000));

    const stream = createStream(c, ns);
    const served = countPerReplica(c);
    await new Promise((r) => setTimeout(r, 3_000));
    const newFingerprint = new X509Certificate(readFileSync(join(dir, 'tls.crt'))).fingerprint256;
    const swapped = performance.now();
    const data = { 'tls.crt': readFileSync(join(dir, 'tls.crt')).toString('base64'), 'tls.key': readFileSync(join(dir, 'tls.key')).toString('base64'), 'ca.crt': Buffer.from(newCa).toString('base64') };
    await c.kubectl(['patch', 'secret', secretName, '-n', NAMESPACE, '--type=merge', '-p', JSON.stringify({ data })]);
    await pollUntil('both replicas to serve the new certificate', async () => {
      const now = await Promise.all(pods.map((p) => servedFingerprint(p.status.podIP).catch(() => '')));
      return now.every((f) => f === newFingerprint) || undefined;
    }, { timeoutMs: 120_000, intervalMs: 250 });
    const rotationSeconds = (performance.now() - swapped) / 1000;
    await new Promise((r) => setTimeout(r, 3_000));
    const result = await stream.stop();
    const perReplica = await served.stop();
    const unmutated = await unmutatedAfterRepairs(c, ns, 0);
    t.diagnostic(`rotation: both replicas served the new certificate ${rotationSeconds.toFixed(1)} s after the Secret changed`);
    const atCreate = result.unmutatedAtCreate.services.length + result.unmutatedAtCreate.deployments.length;
    recordRow({
      name: 'certificate rotated through the Secret',
      creates: result.services + result.deployments,
      unmutatedAtCreate: atCreate,
      repaired: 0,
      reported: 0,
      silentlyUnmutated: unmutated.services.length + unmutated.deployments.length,
      refused: Object.values(result.refused).reduce((a, b) => a + b, 0),
      seconds: rotationSeconds,
      served: perReplica,
    });
    assert.ok(oldFingerprints.every((f) => f !== newFingerprint));
    assert.deepEqual(result.refused, {}, 'no create failed');
    assert.deepEqual(result.unmutatedAtCreate, { services: [], deployments: [] }, 'no create was stored unmutated');
    assert.deepEqual(unmutated, { services: [], deployments: [] });
    assert.ok(result.services + result.deployments >= 40, `the stream ran: ${result.services + result.deployments} creates`);
    const reloads = await Promise.all((await webhookPods(c)).map(async (p) => (await fetch(`http://${p.status.podIP}:9090/metrics`).then((r) => r.text())).match(/realip_webhook_tls_certificate_reloads_total\{result="reloaded"\} (\d+)/)?.[1]));
    assert.deepEqual(reloads, ['1', '1'], 'each replica reloaded once, without a restart');
  });
});

describe('overlays/plain on the same nodes, after helm uninstall', { skip }, () => {
  test('overlays/plain (kubectl apply -k, certificate from certs/generate.sh) serves admission through the Service too', { timeout: 300_000 }, async () => {
    const c = nc.cluster;
    await helm(c, ['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait']);
    await pollUntil('the chart\'s pods to be gone', async () => ((await webhookPods(c)).length === 0 ? true : undefined), { timeoutMs: 90_000 });
    const copy = join(work, 'plain');
    await mkdir(copy, { recursive: true });
    copyManifests(copy);
    const overlay = join(copy, 'manifests', 'overlays', 'plain');
    execFileSync(join(REPO_ROOT, 'certs', 'generate.sh'), ['--out', join(overlay, 'tls')], { stdio: 'ignore' });
    // The user's own overlay on top: only the image (and, with no registry, pullPolicy Never).
    const mine = join(copy, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'kustomization.yaml'), JSON.stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['../manifests/overlays/plain'],
      images: [{ name: 'realip-webhook', newName: IMAGE_VALUES.repository, newTag: IMAGE_VALUES.tag }],
      patches: [{ target: { kind: 'Deployment', name: RELEASE }, patch: JSON.stringify([{ op: 'replace', path: '/spec/template/spec/containers/0/imagePullPolicy', value: 'Never' }]) }],
    }));
    await c.kubectl(['apply', '-k', mine]);
    await waitRolledOut(c);
    const ns = 'node-plain';
    await c.kubectl(['create', 'namespace', ns]);
    await c.kubectl(['label', 'namespace', ns, ENABLED_LABEL]);
    const svc = await pollUntil('the plain overlay\'s webhook to mutate a dry-run Service', async () => {
      const { stdout } = await c.kubectl(['create', 'service', 'loadbalancer', 'web', '--tcp=80:8080', '-n', ns, '--dry-run=server', '-o', 'json']);
      const s = JSON.parse(stdout) as Obj;
      return s.spec.externalTrafficPolicy === 'Local' ? s : undefined;
    }, { timeoutMs: 60_000 });
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    const pods = await webhookPods(c);
    assert.deepEqual(pods.map((p) => p.spec.nodeName).sort(), ['node1', 'node2']);
    await c.kubectl(['delete', '-k', mine, '--wait=true']);
  });
});
