// The upgrade a platform team makes: the chart of the previous release (found from the history,
// test/helm/previous-release.ts) installed on the e2e suite's real kube-apiserver, then upgraded
// to this tree's chart while Services are being created in an opted-in namespace. Every one of
// them must come back mutated, and the upgrade's notes must name the new version.
// As in install.test.ts the webhook runs on the host (no kubelet): a helm post-renderer points the
// chart's own MutatingWebhookConfiguration at it by URL, so the configuration the API server calls
// (caBundle, rules, failurePolicy) is the one each chart version installs and the upgrade changes.
// The host webhook is this tree's build throughout, serving the pair from the chart's Secret.
//   npm run test:helm (builds first)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCluster, type Cluster } from '../e2e/cluster.js';
import { getJson, missingPrerequisites, pollUntil, startWebhook, type Obj, type Webhook } from '../e2e/webhook-harness.js';
import { release } from '../kubernetes/release.js';
import { freePort } from '../support/net.js';
import { REPO_ROOT } from '../support/repo.js';
import { CHART_DIR, NAMESPACE, RELEASE, installPostRenderer, runHelm, runHelmAsync, servingCertsFromSecret, valuesFile, type Run } from './helm.js';
import { findPreviousRelease } from './previous-release.js';

const STEP_TIMEOUT_MS = 180_000;
const VALUES = { tls: { mode: 'helm', helm: { extraIpAddresses: ['127.0.0.1'] } } };
const POST_RENDERER = 'realip-url';
const OPTED_IN = 'upgrade-shop';

const previous = findPreviousRelease(REPO_ROOT);
const found = 'commit' in previous ? previous : undefined;
console.log(
  found
    ? `# upgrade from the previous release ${found.version} (${found.commit.slice(0, 12)} "${found.subject}") to this tree (${previous.treeVersion})`
    : `# upgrade test skipped: ${'reason' in previous ? previous.reason : ''}`,
);
const missing = found ? await missingPrerequisites() : [];
const skip = !found ? `${'reason' in previous ? previous.reason : ''}` : missing.length > 0 ? `prerequisites missing: ${missing.join('; ')}` : false;

let cluster: Cluster;
let work = '';
let webhook: Webhook | undefined;

function helm(args: string[]): Run {
  const r = runHelm([...args, '--kubeconfig', cluster.kubeconfig]);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.trim()}`);
  return r;
}

describe(`helm upgrade from the previous release to this tree on a real kube-apiserver ${release.version}`, { skip }, () => {
  let port = 0;
  let previousChart = '';

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'realip-helm-upgrade-'));
    // The previous release's chart, as committed then.
    previousChart = join(work, 'previous');
    await mkdir(previousChart);
    const archive = execFileSync('git', ['-C', REPO_ROOT, 'archive', found!.commit, 'manifests/helm/realip-webhook']);
    execFileSync('tar', ['-x', '-C', previousChart], { input: archive });
    previousChart = join(previousChart, 'manifests', 'helm', 'realip-webhook');
    port = await freePort();
    installPostRenderer(POST_RENDERER, [process.execPath, join(REPO_ROOT, 'test', 'helm', 'post-render-url.ts'), `https://127.0.0.1:${port}/mutate`]);
    cluster = await startCluster();
  }, { timeout: STEP_TIMEOUT_MS });

  after(async () => {
    await webhook?.stop();
    await cluster?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test(`the previous release's chart (${found?.version}) installs, and its configuration calls the webhook`, { timeout: STEP_TIMEOUT_MS }, async () => {
    const r = helm(['install', RELEASE, previousChart, '--namespace', NAMESPACE, '--create-namespace', '--values', valuesFile(VALUES), '--post-renderer', POST_RENDERER]);
    assert.match(r.stdout, /STATUS: deployed/);
    const secret = await getJson(cluster, ['secret', `${RELEASE}-tls`, '-n', NAMESPACE]);
    const certs = await servingCertsFromSecret(secret, join(work, 'tls'));
    webhook = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir: work, name: 'helm-upgrade', port });
    await cluster.kubectl(['create', 'namespace', OPTED_IN]);
    await cluster.kubectl(['label', 'namespace', OPTED_IN, 'realip.io/inject=enabled']);
    await pollUntil('the API server to call the webhook through the installed configuration', async () => {
      const { stdout } = await cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: JSON.stringify(nodePort('probe')) });
      return (JSON.parse(stdout) as Obj).spec.externalTrafficPolicy === 'Local' ? true : undefined;
    });
  });

  test(`helm upgrade to this tree (${previous.treeVersion}): every Service created meanwhile is mutated, and the notes name ${previous.treeVersion}`, { timeout: STEP_TIMEOUT_MS }, async () => {
    const before = await getJson(cluster, ['mutatingwebhookconfiguration', `00-${RELEASE}`]);
    // Services created one after another from before the upgrade starts until after it ends.
    const created: { name: string; at: number }[] = [];
    let upgrading = true;
    let upgradeStart = 0;
    let upgradeEnd = 0;
    const load = (async () => {
      for (let i = 0; upgrading || created.filter((c) => c.at > upgradeEnd).length < 2; i++) {
        const name = `web-${i}`;
        await cluster.kubectl(['create', '-f', '-'], { stdin: JSON.stringify(nodePort(name)) });
        created.push({ name, at: performance.now() });
      }
    })();
    while (created.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    upgradeStart = performance.now();
    let r: Run;
    try {
      r = await runHelmAsync(['upgrade', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--values', valuesFile(VALUES), '--post-renderer', POST_RENDERER, '--kubeconfig', cluster.kubeconfig]);
    } finally {
      upgradeEnd = performance.now();
      upgrading = false;
    }
    await load;
    assert.equal(r.code, 0, `helm upgrade failed:\n${r.stderr}`);

    assert.match(r.stdout, /REVISION: 2/);
    assert.match(r.stdout, new RegExp(`realip-webhook ${previous.treeVersion.replaceAll('.', '\\.')} is installed in namespace ${NAMESPACE}`), 'the notes name the new version');
    const during = created.filter((c) => c.at > upgradeStart && c.at <= upgradeEnd + 1);
    console.log(`# ${created.length} Services created, ${during.length} completed while helm upgrade ran (${((upgradeEnd - upgradeStart) / 1000).toFixed(1)} s)`);
    assert.ok(during.length > 0, 'at least one Service was created while the upgrade ran');
    const services = JSON.parse((await cluster.kubectl(['get', 'services', '-n', OPTED_IN, '-o', 'json'])).stdout) as Obj;
    const policies = Object.fromEntries((services.items as Obj[]).map((s) => [s.metadata.name, s.spec.externalTrafficPolicy]));
    const unmutated = created.filter((c) => policies[c.name] !== 'Local').map((c) => `${c.name}: ${policies[c.name]}`);
    assert.deepEqual(unmutated, [], `every Service created across the upgrade is Local; webhook log:\n${await webhook!.logTail(10)}`);

    const after = await getJson(cluster, ['mutatingwebhookconfiguration', `00-${RELEASE}`]);
    assert.equal(after.metadata.uid, before.metadata.uid, 'the configuration was updated in place, not deleted and created again');
    assert.equal(after.webhooks[0].clientConfig.caBundle, before.webhooks[0].clientConfig.caBundle, 'the same CA: the running pods keep serving a certificate it verifies');
    const listed = JSON.parse(helm(['list', '--namespace', NAMESPACE, '-o', 'json']).stdout) as { app_version: string; chart: string }[];
    assert.deepEqual(listed.map((l) => [l.chart, l.app_version]), [[`realip-webhook-${previous.treeVersion}`, previous.treeVersion]]);
    const deployment = await getJson(cluster, ['deployment', RELEASE, '-n', NAMESPACE]);
    assert.match(deployment.spec.template.spec.containers[0].image, new RegExp(`:${previous.treeVersion.replaceAll('.', '\\.')}$`), 'the Deployment runs the new image tag');
  });
});

function nodePort(name: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: OPTED_IN },
    spec: { type: 'NodePort', selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
  };
}
