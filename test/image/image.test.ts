// The container image, built from the Dockerfile as it is (buildah, on a stand-in for the official
// node base: see docs/image.md) and run from its own filesystem, read-only, as its USER, the way a
// kubelet would run it with readOnlyRootFilesystem. Checks what the image holds, what it says on a
// first run, a smoke run over HTTPS, and the kubectl walkthrough with a real kube-apiserver (the
// release KUBE_VERSION names) calling the image's process.
//   npm run test:image   (root; buildah and debootstrap: apt-get install buildah debootstrap)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import supertest from 'supertest';
import { startCluster, type Cluster } from '../e2e/cluster.js';
import { release } from '../kubernetes/release.js';
import {
  adaptWebhookConfiguration,
  admissionLog,
  generateCertsForRegistration,
  getJson,
  missingPrerequisites,
  pollUntil,
  shippedWebhookConfiguration,
  startWebhook,
  type Obj,
  type Webhook,
} from '../e2e/webhook-harness.js';
import { deployment, review } from '../fixtures/objects.js';
import type { ServingCerts } from '../support/certs.js';
import { applyStrict, decodePatch } from '../support/patch.js';
import { REPO_ROOT } from '../support/repo.js';
import { parseVersionLine } from '../release/version-line.js';
import { TEST_IMAGE, buildImage, buildah, missingImageTools, openImage, removeImage, removeLeftovers, type BuiltImage, type OpenedImage } from './image.js';

const TPROXY = 'sidecar.istio.io/interceptionMode';
// Where the SBOM is copied for CI to keep; .ci/run prints it.
const ARTIFACTS = process.env.REALIP_ARTIFACTS ?? join(REPO_ROOT, 'artifacts');
// When set, the built image is also written there as an OCI archive, for .ci/run's
// `npm run release -- --dry-run --image-archive` to reuse instead of building the image again.
const IMAGE_ARCHIVE = process.env.REALIP_IMAGE_ARCHIVE;
const LOCK = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };

let built: BuiltImage;
let image: OpenedImage;
/** Files handed to the image's process: under the shared tmpdir, owned by the image's USER. */
let work = '';
let certs: ServingCerts;
let namespacesFile = '';
const started: Webhook[] = [];

/** Runs the image to its exit with `flags` after the ENTRYPOINT. */
function runToExit(flags: string[]) {
  const [program, ...args] = image.command();
  return spawnSync(program!, [...args, ...flags], { encoding: 'utf8', timeout: 60_000 });
}

/** Hands a directory tree to the image's USER, as a Secret volume mounted for it would be. */
function giveToImageUser(dir: string) {
  chownSync(dir, image.uid, image.gid);
  for (const entry of readdirSync(dir, { recursive: true })) chownSync(join(dir, entry.toString()), image.uid, image.gid);
}

/** The packages directly under a node_modules directory (scoped ones as @scope/name), with nested node_modules. */
function installedPackages(nodeModules: string, prefix = 'node_modules'): string[] {
  return readdirSync(nodeModules, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .flatMap((e) => (e.name.startsWith('@') ? readdirSync(join(nodeModules, e.name)).map((n) => `${e.name}/${n}`) : [e.name]))
    .flatMap((name) => {
      const location = `${prefix}/${name}`;
      const nested = join(nodeModules, name, 'node_modules');
      return [location, ...(readdirSync(join(nodeModules, name)).includes('node_modules') ? installedPackages(nested, `${location}/node_modules`) : [])];
    });
}

const version = (location: string) => LOCK.packages[location]?.version;
const nameOf = (location: string) => location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);


const cannotRun = await missingImageTools();
if (cannotRun) console.log(`# image tests skipped: ${cannotRun}`);

describe('the image (Dockerfile built with buildah, run read-only as its USER)', { skip: cannotRun ?? false }, () => {
  before(async () => {
    await removeLeftovers();
    built = await buildImage(TEST_IMAGE);
    console.log(`# ${built.base}: ${built.baseSeconds.toFixed(0)} s; ${TEST_IMAGE} built in ${built.imageSeconds.toFixed(0)} s`);
    if (IMAGE_ARCHIVE) {
      const started = performance.now();
      rmSync(IMAGE_ARCHIVE, { force: true });
      await buildah(['push', '--quiet', TEST_IMAGE, `oci-archive:${IMAGE_ARCHIVE}:realip-webhook:${built.info.version}`], { timeoutMs: 5 * 60_000 });
      console.log(`# ${IMAGE_ARCHIVE} written in ${((performance.now() - started) / 1000).toFixed(1)} s (revision ${built.info.revision})`);
    }
    image = await openImage(TEST_IMAGE, tmpdir());
    work = await mkdtemp(join(tmpdir(), 'realip-image-'));
    certs = generateCertsForRegistration(join(work, 'certs'));
    namespacesFile = join(work, 'namespaces.yaml');
    copyFileSync(join(REPO_ROOT, 'manifests', 'examples', 'namespaces.yaml'), namespacesFile);
    copyFileSync(join(REPO_ROOT, 'test', 'image', 'record-loads.ts'), join(work, 'record-loads.ts'));
    giveToImageUser(work);
  }, { timeout: 20 * 60_000 });

  after(async () => {
    try {
      await Promise.all(started.map((w) => w.stop()));
      await image?.close();
    } finally {
      await removeImage(TEST_IMAGE);
      if (work) rmSync(work, { recursive: true, force: true });
    }
  });

  test('runs as its numeric USER 1000:1000 from /app, with node --max-semi-space-size=2 dist/cli.js serve', () => {
    assert.equal(image.config.User, '1000:1000');
    assert.equal(image.config.WorkingDir, '/app');
    assert.deepEqual(image.config.Entrypoint, ['node', '--max-semi-space-size=2', 'dist/cli.js', 'serve']);
    assert.ok(image.config.Env.includes('NODE_ENV=production'), image.config.Env.join(' '));
  });

  test("its OCI labels name package.json's version and the commit that its own --version reports", () => {
    const labels = image.config.Labels;
    const label = (name: string) => labels[`org.opencontainers.image.${name}`];
    const [program, ...args] = image.command();
    assert.equal(args.at(-1), 'serve', 'the ENTRYPOINT ends with serve');
    const run = spawnSync(program!, [...args.slice(0, -1), '--version'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    const reported = parseVersionLine(run.stdout);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(label('version'), pkg.version);
    assert.equal(reported.version, pkg.version);
    assert.equal(label('revision'), reported.revision, 'the bundle was built from the labelled commit');
    assert.equal(label('revision'), built.info.revision);
    assert.equal(label('source'), built.info.source);
    assert.equal(label('created'), built.info.created);
    assert.match(label('created') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    console.log(`# image labels: version ${label('version')}, revision ${label('revision')}, source ${label('source')}, created ${label('created')}`);
  });

  test('/app holds the bundle, package.json, the SBOM and node_modules with only the packages the bundle leaves external', () => {
    assert.deepEqual(readdirSync(join(image.root, 'app')).sort(), ['dist', 'node_modules', 'package.json', 'sbom.cdx.json']);
    assert.deepEqual(readdirSync(join(image.root, 'app', 'dist')), ['cli.js'], 'no source map, no unbundled modules');
    const installed = installedPackages(join(image.root, 'app', 'node_modules')).sort();
    assert.deepEqual(installed.map(nameOf), ['node-fetch', 'tr46', 'webidl-conversions', 'whatwg-url']);
    for (const location of installed) {
      const { version: v } = JSON.parse(readFileSync(join(image.root, 'app', location, 'package.json'), 'utf8')) as { version: string };
      assert.equal(v, version(location), `${location}: the lockfile's version`);
    }
  });

  test('no flags: one line saying --tls-cert is required, exit 2', () => {
    const run = runToExit([]);
    assert.equal(run.status, 2, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^realip-webhook: --tls-cert is required \(or set REALIP_TLS_CERT\)\n$/);
  });

  test('certificates but no cluster and no --namespaces-file: one line naming --kubeconfig and --namespaces-file, exit 2', () => {
    const run = runToExit(['--tls-cert', certs.certFile, '--tls-key', certs.keyFile]);
    assert.equal(run.status, 2, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, no stack trace:\n${run.stderr}`);
    assert.match(lines[0]!, /^realip-webhook: no namespace source: no cluster configured .* give --kubeconfig or --namespaces-file/);
  });

  test('smoke: ready, /mutate patches a Deployment, /metrics serves, SIGTERM exits 0; its root is the image, read-only, uid 1000', { timeout: 120_000 }, async () => {
    const webhook = await startWebhook({ command: image.command(), certs, dir: work, name: 'smoke', extraArgs: ['--namespaces-file', namespacesFile] });
    started.push(webhook);

    assert.equal(readlinkSync(`/proc/${webhook.pid}/root`), image.root, 'the process runs in the image root');
    assert.equal(readlinkSync(`/proc/${webhook.pid}/exe`), join(image.root, 'usr/local/bin/node'), "the image's node");
    const status = readFileSync(`/proc/${webhook.pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    assert.match(status, /^Groups:\s+1000\s*$/m);
    // Mount points as the process sees them: its root is "/".
    const rootMount = readFileSync(`/proc/${webhook.pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
    assert.match(rootMount ?? '(no mount)', /^\S+ \S+ \S+ \S+ \S+ ro[, ]/, `the image root is mounted read-only: ${rootMount}`);

    const object = deployment();
    const res = await supertest(webhook.url.replace(/\/mutate$/, '')).post('/mutate').ca(certs.caPem).send(review(object, { uid: 'image-1' }));
    assert.equal(res.status, 200);
    assert.equal(res.body.response.uid, 'image-1');
    const patched = applyStrict(object, decodePatch(res.body.response.patch));
    assert.equal(patched['spec']['template']['metadata']['annotations'][TPROXY], 'TPROXY');

    const metrics = await fetch(webhook.metricsUrl, { signal: AbortSignal.timeout(5_000) });
    assert.equal(metrics.status, 200);
    const body = await metrics.text();
    assert.match(body, /^realip_webhook_admission_requests_total\{.*\} 1$/m);
    assert.match(body, /^process_resident_memory_bytes \d+/m, 'process metrics read /proc');

    await webhook.stop();
    assert.equal(webhook.exitCode(), 0, await webhook.logTail());
    const log = await webhook.logTail(5);
    assert.match(log, /"msg":"shutting down"/);
  });

  test('node_modules: serve loads every package the image carries', { timeout: 120_000 }, async () => {
    const webhook = await startWebhook({
      command: image.command({ nodeFlags: [`--import=${join(work, 'record-loads.ts')}`] }),
      certs,
      dir: work,
      name: 'loads',
      extraArgs: ['--namespaces-file', namespacesFile],
    });
    started.push(webhook);
    await webhook.stop();
    assert.equal(webhook.exitCode(), 0, await webhook.logTail());
    const line = (await webhook.logTail(3)).split('\n').find((l) => l.startsWith('{"loadedModules":'));
    assert.ok(line, `the loaded modules line at exit:\n${await webhook.logTail()}`);
    const loaded = (JSON.parse(line) as { loadedModules: string[] }).loadedModules.filter((u) => u.startsWith('file:///app/'));
    assert.ok(loaded.includes('file:///app/dist/cli.js'));
    const installed = installedPackages(join(image.root, 'app', 'node_modules'));
    // The package a file belongs to: the longest location it lies under (nested ones included).
    const owner = (path: string) => installed.filter((l) => path.startsWith(`${l}/`)).sort((a, b) => b.length - a.length)[0] ?? path;
    const loadedPackages = new Set(loaded.filter((u) => u.includes('/node_modules/')).map((u) => owner(relative('/app', new URL(u).pathname))));
    assert.deepEqual([...loadedPackages].sort(), installed.sort());
  });

  test('the SBOM (CycloneDX, from npm sbom) lists exactly the packages bundled in dist/cli.js and those in node_modules', () => {
    const file = join(image.root, 'app', 'sbom.cdx.json');
    const sbom = JSON.parse(readFileSync(file, 'utf8')) as Obj;
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.equal(sbom.metadata.component.name, 'realip-webhook');
    assert.equal(sbom.metadata.tools[0].name, 'cli', 'made by npm');
    // esbuild heads each bundled module with its path: `// node_modules/<package>/[node_modules/<package>/]...`.
    const bundle = readFileSync(join(image.root, 'app', 'dist', 'cli.js'), 'utf8');
    const bundled = [...bundle.matchAll(/^\/\/ ((?:node_modules\/(?:@[^/\n]+\/)?[^/\n]+\/)+)/gm)].map((m) => m[1]!.slice(0, -1));
    assert.ok(bundled.includes('node_modules/fastify'), 'fastify is in the bundle');
    const inImage = [...bundled, ...installedPackages(join(image.root, 'app', 'node_modules'))].map((l) => `${nameOf(l)}@${version(l)}`);
    const components = sbom.components as Obj[];
    assert.deepEqual(components.map((c) => c['bom-ref'] as string).sort(), [...new Set(inImage)].sort());
    for (const c of components) assert.ok(c.hashes?.length > 0 && c.licenses?.length > 0, `${c['bom-ref']}: hash and licence`);

    mkdirSync(ARTIFACTS, { recursive: true });
    const out = join(ARTIFACTS, 'sbom.cdx.json');
    writeFileSync(out, readFileSync(file));
    console.log(`# SBOM of the image (${components.length} packages) copied to ${out}`);
  });

  describe(`behind a real kube-apiserver ${release.version}: the kubectl walkthrough, answered by the image`, () => {
    let missing: string[] = [];
    let cluster: Cluster | undefined;
    let webhook: Webhook;
    const ns = 'image-walkthrough';

    before(async (t) => {
      missing = await missingPrerequisites({ builtCli: false });
      if (missing.length > 0) return;
      cluster = await startCluster();
      // The image's USER cannot read the cluster's own files: a kubeconfig of its own, CA inline.
      const kubeconfig = JSON.parse(readFileSync(cluster.kubeconfig, 'utf8')) as Obj;
      for (const c of kubeconfig.clusters as Obj[]) {
        c.cluster['certificate-authority-data'] = readFileSync(c.cluster['certificate-authority']).toString('base64');
        delete c.cluster['certificate-authority'];
      }
      const imageKubeconfig = join(work, 'kubeconfig');
      writeFileSync(imageKubeconfig, JSON.stringify(kubeconfig), { mode: 0o600 });
      giveToImageUser(work);
      webhook = await startWebhook({ command: image.command(), kubeconfig: imageKubeconfig, certs, dir: work, name: 'walkthrough' });
      started.push(webhook);
      assert.equal(readlinkSync(`/proc/${webhook.pid}/root`), image.root);
      const config = adaptWebhookConfiguration(await shippedWebhookConfiguration(), webhook.url, certs.caBundle);
      await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(config) });
      await cluster.kubectl(['create', 'namespace', ns]);
      await cluster.kubectl(['label', 'namespace', ns, 'realip.io/inject=enabled']);
      // The API server and the webhook both cache for a moment: a server-side dry run shows when they caught up.
      await pollUntil('the image to mutate a dry-run Deployment', async () => {
        const { stdout } = await cluster!.kubectl(['create', 'deployment', 'probe', '--image=registry.k8s.io/echoserver:1.4', '-n', ns, '--dry-run=server', '-o', 'json']);
        return (JSON.parse(stdout) as Obj).spec.template.metadata.annotations?.[TPROXY] === 'TPROXY' || undefined;
      }, { timeoutMs: 60_000 });
      t.diagnostic(`webhook ${webhook.url} (pid ${webhook.pid}, root ${image.root})`);
    }, { timeout: 180_000 });

    after(async () => {
      await webhook?.stop();
      await cluster?.stop();
    });

    test('kubectl create deployment: preferred anti-affinity on its selector and TPROXY, with the warnings', { timeout: 60_000 }, async (t) => {
      if (missing.length > 0) return t.skip(`prerequisites missing: ${missing.join('; ')}`);
      const { stderr } = await cluster!.kubectl(['create', 'deployment', 'source-ip-app', '--image=registry.k8s.io/echoserver:1.4', '-n', ns]);
      const d = await getJson(cluster!, ['deployment', 'source-ip-app', '-n', ns]);
      assert.equal(d.spec.template.metadata.annotations[TPROXY], 'TPROXY');
      assert.deepEqual(d.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution, [
        { weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: 'kubernetes.io/hostname' } },
      ]);
      assert.match(stderr, /^Warning: realip-webhook: added preferred pod anti-affinity/m);
      const answered = (await admissionLog(webhook)).filter((l) => l.kind === 'Deployment' && l.name === 'source-ip-app');
      assert.equal(answered.length, 1, "the image's process answered the create");
    });

    test('kubectl expose --type=NodePort: externalTrafficPolicy Local', { timeout: 60_000 }, async (t) => {
      if (missing.length > 0) return t.skip(`prerequisites missing: ${missing.join('; ')}`);
      await cluster!.kubectl(['expose', 'deployment', 'source-ip-app', '--port=8080', '--type=NodePort', '-n', ns]);
      const svc = await getJson(cluster!, ['service', 'source-ip-app', '-n', ns]);
      assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    });
  });
});
