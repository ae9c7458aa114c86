// The release: one version everywhere, and the files a platform team installs from.
//   npm run release -- X.Y.Z        on a clean tree: sets X.Y.Z in package.json and every file that
//                                   carries it, moves CHANGELOG's Unreleased under X.Y.Z, commits,
//                                   builds the artifacts from that commit, then tags vX.Y.Z.
//                                   Pushes nothing.
//   npm run release -- --dry-run    builds the artifacts for the current version; changes nothing.
//   --image-archive FILE            use this OCI archive (made by `npm run test:image` with
//                                   REALIP_IMAGE_ARCHIVE) instead of building the image again; it
//                                   must carry this tree's version and commit in its labels.
// Artifacts, in artifacts/ (git-ignored): the packaged chart, the image as an OCI archive and its
// CycloneDX SBOM, the policies as one YAML, the kustomize base as one install YAML, SHA256SUMS.
// The image is the `npm run test:image` build (buildah, root; test/image/image.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildImage, buildah, missingImageTools, removeImage } from '../test/image/image.ts';
import { gitRevision, packageVersion } from './build-info.ts';
import { releaseChangelog } from './changelog.ts';
import { SEMVER, compareVersions } from './semver.ts';
import { setVersion } from './version-files.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'artifacts');
const USAGE = 'usage: npm run release -- X.Y.Z | --dry-run   [--image-archive FILE]';

class ReleaseError extends Error {}

const step = (what: string) => console.log(`release: ${what}`);

function run(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ReleaseError(`${file} ${args.join(' ')} failed:\n${(e.stderr || e.message).trim().split('\n').slice(-20).join('\n')}`);
  }
}
const git = (...args: string[]) => run('git', args);

interface Options {
  version?: string;
  dryRun: boolean;
  imageArchive?: string;
}

function parseArgs(args: string[]): Options {
  const opts: Options = { dryRun: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--dry-run') opts.dryRun = true;
    else if (arg === '--image-archive') {
      const file = args[++i];
      if (!file) throw new ReleaseError(`--image-archive needs a file\n${USAGE}`);
      opts.imageArchive = resolve(file);
    } else if (arg.startsWith('-')) throw new ReleaseError(`unknown flag ${arg}\n${USAGE}`);
    else if (opts.version) throw new ReleaseError(`one version only, got ${opts.version} and ${arg}\n${USAGE}`);
    else opts.version = arg;
  }
  if (opts.dryRun === Boolean(opts.version)) throw new ReleaseError(`give a version or --dry-run, not ${opts.dryRun ? 'both' : 'neither'}\n${USAGE}`);
  if (opts.version !== undefined) {
    if (opts.version.startsWith('v')) throw new ReleaseError(`version ${opts.version}: give it without the "v" (the tag gets it: v${opts.version.slice(1)})`);
    if (!SEMVER.test(opts.version)) throw new ReleaseError(`version ${JSON.stringify(opts.version)} is not semantic versioning: MAJOR.MINOR.PATCH (1.2.3), optionally -PRERELEASE (1.2.3-rc.1)`);
  }
  return opts;
}

function checkCleanTree(): void {
  const changes = git('status', '--porcelain');
  if (changes) throw new ReleaseError(`the tree has uncommitted changes; commit or stash them first:\n${changes}`);
}

/** The OCI archive's image config and the SBOM the image carries, read with tar alone. */
function readArchive(archive: string): { labels: Record<string, string>; sbom: string } {
  const blob = (digest: string) => `blobs/${digest.replace(':', '/')}`;
  const member = (path: string) => run('tar', ['-xOf', archive, path]);
  const index = JSON.parse(member('index.json')) as { manifests: { digest: string }[] };
  if (index.manifests.length !== 1) throw new ReleaseError(`${archive}: expected one image in index.json, found ${index.manifests.length}`);
  const manifest = JSON.parse(member(blob(index.manifests[0]!.digest))) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(member(blob(manifest.config.digest))) as { config: { Labels?: Record<string, string> } };
  // The SBOM is in one of the last layers (COPY near the end of the Dockerfile): search from the top.
  const scratch = mkdtempSync(join(tmpdir(), 'realip-release-layer-'));
  try {
    for (const layer of [...manifest.layers].reverse()) {
      const file = join(scratch, 'layer');
      const fd = openSync(file, 'w');
      try {
        execFileSync('tar', ['-xOf', archive, blob(layer.digest)], { stdio: ['ignore', fd, 'pipe'] });
      } finally {
        closeSync(fd);
      }
      const listed = run('tar', ['-tf', file]).split('\n');
      if (listed.includes('app/sbom.cdx.json')) return { labels: config.config.Labels ?? {}, sbom: run('tar', ['-xOf', file, 'app/sbom.cdx.json']) };
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  throw new ReleaseError(`${archive}: no layer holds app/sbom.cdx.json`);
}

async function buildArtifacts(version: string, opts: Options): Promise<string[]> {
  const revision = gitRevision(ROOT);
  mkdirSync(ARTIFACTS, { recursive: true });
  const out = (name: string) => join(ARTIFACTS, name);
  const names = {
    chart: `realip-webhook-${version}.tgz`,
    image: `realip-webhook-${version}.oci.tar`,
    sbom: `realip-webhook-${version}.sbom.cdx.json`,
    policies: `realip-webhook-${version}-policies.yaml`,
    install: `realip-webhook-${version}-install.yaml`,
  };

  step(`bundle (version ${version}, revision ${revision})`);
  run('npm', ['run', '--silent', 'bundle']);
  const policies = run(process.execPath, ['dist/cli.js', 'policy']);
  writeFileSync(out(names.policies), `${policies}\n`);

  const helm = run('bash', ['test/helm/install-helm.sh']).split('\n').at(-1)!;
  const kubectl = join(dirname(dirname(helm)), 'kubectl', 'kubectl');
  step('helm package manifests/helm/realip-webhook');
  run(helm, ['lint', '--strict', 'manifests/helm/realip-webhook']);
  run(helm, ['package', 'manifests/helm/realip-webhook', '--destination', ARTIFACTS]);
  step('kubectl kustomize manifests/base');
  writeFileSync(out(names.install), `${run(kubectl, ['kustomize', 'manifests/base'])}\n`);

  if (opts.imageArchive) {
    step(`image: reusing ${opts.imageArchive}`);
    copyFileSync(opts.imageArchive, out(names.image));
  } else {
    const missing = await missingImageTools();
    if (missing) throw new ReleaseError(`cannot build the image: ${missing} (or pass --image-archive FILE from npm run test:image)`);
    const tag = `localhost/realip-webhook:release-${process.pid}`;
    step('image: building the Dockerfile with buildah (test/image/image.ts)');
    try {
      const built = await buildImage(tag);
      step(`image built in ${(built.baseSeconds + built.imageSeconds).toFixed(0)} s; writing the OCI archive`);
      rmSync(out(names.image), { force: true });
      await buildah(['push', '--quiet', tag, `oci-archive:${out(names.image)}:realip-webhook:${version}`], { timeoutMs: 5 * 60_000 });
    } finally {
      await removeImage(tag);
    }
  }
  const { labels, sbom } = readArchive(out(names.image));
  writeFileSync(out(names.sbom), sbom.endsWith('\n') ? sbom : `${sbom}\n`);

  step('checking that every artifact names the same version');
  const chart = parse(run(helm, ['show', 'chart', out(names.chart)])) as { version: string; appVersion: string };
  const images = [...readFileSync(out(names.install), 'utf8').matchAll(/^\s*image: (\S+)$/gm)].map((m) => m[1]);
  const sbomComponent = (JSON.parse(sbom) as { metadata: { component: { name: string; version: string } } }).metadata.component;
  const found: [string, string | undefined][] = [
    [`${names.chart} version`, chart.version],
    [`${names.chart} appVersion`, chart.appVersion],
    [`${names.image} label org.opencontainers.image.version`, labels['org.opencontainers.image.version']],
    [`${names.sbom} metadata.component`, `${sbomComponent.version}`],
    [`${names.policies} header`, /^# Generated by: realip-webhook (\S+) policy/.exec(policies)?.[1]],
    [`${names.install} image tag`, images.length === 1 ? images[0]!.split(':').at(-1) : `${images.length} images`],
  ];
  const wrong = found.filter(([, v]) => v !== version);
  if (labels['org.opencontainers.image.revision'] !== revision) wrong.push([`${names.image} label org.opencontainers.image.revision (tree: ${revision})`, labels['org.opencontainers.image.revision']]);
  if (wrong.length > 0) throw new ReleaseError(`artifacts disagree with version ${version}:\n${wrong.map(([what, v]) => `  ${what}: ${v}`).join('\n')}`);

  const files = Object.values(names);
  const sums = files.map((name) => `${createHash('sha256').update(readFileSync(out(name))).digest('hex')}  ${name}\n`).join('');
  writeFileSync(out('SHA256SUMS'), sums);
  return [...files, 'SHA256SUMS'];
}

async function main(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  git('rev-parse', '--git-dir');
  const current = packageVersion(ROOT);
  let version = current;
  if (opts.dryRun) {
    const revision = gitRevision(ROOT);
    step(`dry run: the artifacts of ${current} at ${revision}; nothing is committed or tagged`);
    if (opts.imageArchive) checkCleanTree();
  } else {
    version = opts.version!;
    checkCleanTree();
    if (compareVersions(version, current) <= 0) throw new ReleaseError(`${version} is not newer than package.json's ${current}`);
    if (git('tag', '--list', `v${version}`)) throw new ReleaseError(`tag v${version} exists already`);
    if (opts.imageArchive) throw new ReleaseError('--image-archive is for --dry-run only: a release builds its image from the release commit');
    const date = new Date().toISOString().slice(0, 10);
    let changelog: string;
    try {
      changelog = releaseChangelog(readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8'), version, date);
    } catch (err) {
      throw new ReleaseError((err as Error).message);
    }
    step(`setting ${version} (was ${current}) in every carrier; CHANGELOG: Unreleased becomes ${version} - ${date}`);
    const written = setVersion(ROOT, version);
    writeFileSync(join(ROOT, 'CHANGELOG.md'), changelog);
    const before = git('rev-parse', 'HEAD');
    // Committed before the build, so that the artifacts carry the release commit as their revision.
    git('commit', '--quiet', '-m', `Release ${version}`, '--', ...written, 'CHANGELOG.md');
    let files: string[];
    try {
      files = await buildArtifacts(version, opts);
    } catch (err) {
      // Undo the release commit: the tree was clean before it, so nothing else is lost.
      git('reset', '--quiet', '--keep', before);
      console.error(`release: the release commit is undone; HEAD is ${before} again`);
      throw err;
    }
    git('tag', '--annotate', `v${version}`, '--message', `realip-webhook ${version}`);
    step(`committed "Release ${version}" (${git('rev-parse', '--short', 'HEAD')}) and tagged v${version}; nothing pushed`);
    printArtifacts(files);
    return;
  }
  printArtifacts(await buildArtifacts(version, opts));
}

function printArtifacts(files: string[]): void {
  for (const name of files) step(`  artifacts/${name}`);
  step('verify with: cd artifacts && sha256sum -c SHA256SUMS');
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ReleaseError) {
    console.error(`release: ${err.message}`);
    process.exitCode = 2;
    return;
  }
  console.error('release: failed:', err);
  process.exitCode = 1;
});
