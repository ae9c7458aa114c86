// Proof that the two engines agree, on a real API server (Kubernetes 1.36+): the same corpus goes
// through the webhook (its shipped configuration, label prefix realip.io) and through the
// policies of `realip-webhook policy --label-prefix policy.realip.io`, each object in twin
// namespaces labelled for one engine only. What the API server stores (names, uids, times,
// allocations aside) and the warnings kubectl prints must be the same, or the difference is named
// with its reason. The API server's "Validation failed for ValidatingAdmissionPolicy ..." prefix
// of a policy's warning is taken off before comparing (docs/engines.md).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { atLeast, release } from '../kubernetes/release.js';
import { startCluster, type Cluster } from '../e2e/cluster.js';
import { deployment, namespace, service } from '../e2e/manifests.js';
import {
  adaptWebhookConfiguration,
  generateCertsForRegistration,
  manifestStream,
  missingPrerequisites,
  pollUntil,
  ROOT,
  shippedWebhookConfiguration,
  startWebhook,
  type Obj,
  type Webhook,
} from '../e2e/webhook-harness.js';
import { differences, type Difference } from './compare.js';
import { e2eCases, generatedCases, PREFIX, type Case } from './corpus.js';
import { EngineRunner, renamePrefix, type Engine } from './engines.js';

const SEED = Number(process.env.REALIP_ENGINES_SEED ?? 17);
const GENERATED = Number(process.env.REALIP_ENGINES_CASES ?? 160);
const CONCURRENCY = 3;
const WEBHOOK: Engine = { name: 'webhook', prefix: PREFIX };
const POLICY: Engine = { name: 'policy', prefix: 'policy.realip.io' };
const BROKEN: Engine = { name: 'broken', prefix: 'broken.realip.io' };

let cluster: Cluster;
let webhook: Webhook | undefined;
let workDir: string;

/** The built CLI's `policy` output: what a user pipes into kubectl. */
function policyYaml(prefix: string): string {
  return execFileSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'policy', '--label-prefix', prefix], { encoding: 'utf8' });
}

/** Creates each engine's twin of every namespace the cases need, then waits until the engine acts there. */
async function prepareNamespaces(runner: EngineRunner, cases: Case[]) {
  const seen = new Set<string>();
  const objects: Obj[] = [];
  for (const c of cases) {
    const name = runner.namespaceFor(c.labels);
    if (seen.has(name)) continue;
    seen.add(name);
    objects.push(namespace(name, renamePrefix(c.labels, PREFIX, runner.engine.prefix)));
  }
  await cluster.kubectl(['create', '-f', '-'], { stdin: manifestStream(...objects) });
  const probe = renamePrefix({ [`${PREFIX}/inject`]: 'enabled' }, PREFIX, runner.engine.prefix);
  const ns = runner.namespaceFor({ [`${PREFIX}/inject`]: 'enabled' });
  assert.ok(seen.has(ns), `the corpus has a namespace with only ${JSON.stringify(probe)}`);
  // Policies and namespaces reach the API server's admission caches a moment after they are stored.
  await pollUntil(`${runner.engine.name} to mutate in ${ns}`, async () => {
    const run = (o: Obj) => cluster.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: JSON.stringify(o) });
    const svc = await run(service('probe', ns, 'NodePort'));
    const d = await run(deployment('probe', ns));
    const ready = JSON.parse(svc.stdout).spec.externalTrafficPolicy === 'Local' && /Warning: .*externalTrafficPolicy=Local/.test(svc.stderr) &&
      JSON.parse(d.stdout).spec.template.spec.affinity && /Warning: .*interceptionMode=TPROXY/.test(d.stderr);
    return ready ? true : undefined;
  }, { timeoutMs: 60_000 });
}

/** Runs every case through both engines, `CONCURRENCY` cases at a time. */
async function compareEngines(a: EngineRunner, b: EngineRunner, cases: Case[]): Promise<Difference[]> {
  const found: Difference[][] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i]!;
      const [x, y] = await Promise.all([a.run(c, i), b.run(c, i)]).catch((err: Error) => {
        throw new Error(`case ${i} (${c.name}): ${err.message}`, { cause: err });
      });
      found[i] = differences(c, x, y);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return found.flat();
}

function report(label: string, cases: Case[], diffs: Difference[]) {
  const updates = cases.filter((c) => c.update).length;
  const explained = diffs.filter((d) => d.reason);
  console.log(`# ${label}: ${cases.length} cases (${cases.length - updates} CREATE, ${updates} CREATE+UPDATE), ${diffs.length} differences, ${explained.length} of them with a known reason`);
  const reasons = new Map<string, Difference[]>();
  for (const d of explained) reasons.set(d.reason!, [...(reasons.get(d.reason!) ?? []), d]);
  for (const [reason, list] of reasons) {
    console.log(`#   ${list.length} x ${reason}:`);
    console.log(`#     ${list.map((d) => `${d.case} (${d.phase})`).join('; ')}`);
  }
}

const unexplained = (diffs: Difference[]) => diffs.filter((d) => !d.reason).map((d) => `${d.case} (${d.phase}): ${d.what}`);

const missing = await missingPrerequisites();
if (missing.length > 0) {
  test('prerequisites of the engines suite', () => {
    throw new Error(missing.join('\n'));
  });
} else if (!atLeast('1.36')) {
  test('Kubernetes 1.36+ for the engines suite', () => {
    throw new Error(`admission policies are GA from Kubernetes 1.36; KUBE_VERSION=${release.minor} (run with KUBE_VERSION=1.37)`);
  });
}

describe(`the webhook and the admission policies store the same objects (Kubernetes ${release.version})`, { skip: (missing.length > 0 || !atLeast('1.36')) && 'see above' }, () => {
  const corpus = [...e2eCases(), ...generatedCases(SEED, GENERATED)];
  const namespaces = new Map<string, number>();
  let webhookRunner: EngineRunner;

  before(async () => {
    cluster = await startCluster();
    workDir = await mkdtemp(join(tmpdir(), 'realip-engines-'));
    const certs = generateCertsForRegistration(join(workDir, 'certs'));
    webhook = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir: workDir, name: 'serve' });
    await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(adaptWebhookConfiguration(await shippedWebhookConfiguration(), webhook.url, certs.caBundle)) });
    await cluster.kubectl(['apply', '-f', '-'], { stdin: policyYaml(POLICY.prefix) });
    webhookRunner = new EngineRunner(cluster, WEBHOOK, namespaces);
  }, { timeout: 120_000 });

  after(async () => {
    await webhook?.stop();
    await cluster?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test(`the corpus (e2e objects + ${GENERATED} generated from seed ${SEED}): zero differences without a named reason; a second pass changes nothing`, { timeout: 900_000 }, async () => {
    const policyRunner = new EngineRunner(cluster, POLICY, namespaces);
    await prepareNamespaces(webhookRunner, corpus);
    await prepareNamespaces(policyRunner, corpus);
    const diffs = await compareEngines(webhookRunner, policyRunner, corpus);
    report('webhook vs policies', corpus, diffs);
    assert.deepEqual(unexplained(diffs), []);
  });

  test('control: a copy of the policies with one CEL expression broken (preferred weight 99) is caught', { timeout: 600_000 }, async () => {
    const docs = parseAllDocuments(policyYaml(BROKEN.prefix)).map((d) => d.toJS() as Obj).filter(Boolean);
    const antiAffinity = docs.find((d) => d.kind === 'MutatingAdmissionPolicy' && d.metadata.name.startsWith('workloads.'))!;
    const patch = antiAffinity.spec.mutations[0].jsonPatch;
    const broken = patch.expression.replaceAll('"weight": dyn(100)', '"weight": dyn(99)');
    assert.notEqual(broken, patch.expression, 'the expression to break is in the generated policy');
    patch.expression = broken;
    await cluster.kubectl(['apply', '-f', '-'], { stdin: docs.map((d) => stringify(d)).join('---\n') });
    const brokenRunner = new EngineRunner(cluster, BROKEN, namespaces);
    // CREATEs only (server-side dry runs): the UPDATE cases' objects exist already.
    const cases = e2eCases().filter((c) => !c.update);
    await prepareNamespaces(brokenRunner, cases);
    const diffs = await compareEngines(webhookRunner, brokenRunner, cases);
    report('control: webhook vs broken policies', cases, diffs);
    const caught = unexplained(diffs);
    assert.ok(caught.length > 0, 'the comparison must find the broken weight');
    assert.ok(caught.some((d) => d.includes('"weight":99')), `a difference names the weight:\n${caught.join('\n')}`);
  });
});
