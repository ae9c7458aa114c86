// The container image as CI builds and runs it with no container engine and no Docker Hub:
// buildah builds the Dockerfile on a stand-in base (base.sh), and the built image runs from its
// own filesystem, mounted read-only, as its USER, in a mount namespace of its own, so nothing
// mounted for it outlives the process.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfo, type BuildInfo } from '../../build/build-info.ts';
import { findExecutable } from '../support/executables.js';
import { pidAlive } from '../support/pids.js';
import { REPO_ROOT } from '../support/repo.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The stand-in base, the build and the built images stay in the project's cache. */
const BUILDAH_ENV = { ...process.env, CONTAINERS_STORAGE_CONF: join(HERE, 'storage.conf') };
// npm's cache, shared by the builds (and kept between runs) through a volume: the build stage
// downloads nothing it has fetched before.
const NPM_CACHE = '/var/cache/realip-webhook/npm-cache';
// The machine's CA bundle: a TLS-intercepting egress proxy is trusted there, not in Node's own list.
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function run(file: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: BUILDAH_ENV, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed (${err.code ?? err.signal}):\n${stderr.trim().split('\n').slice(-30).join('\n')}`));
      else resolve(stdout.trim());
    });
  });
}

/** This run's image tag and working container; a leftover's pid says whether its run still lives. */
export const TEST_IMAGE = `localhost/realip-webhook:test-${process.pid}`;
const TEST_CONTAINER = `realip-image-test-${process.pid}`;

export const buildah = (args: string[], opts: { timeoutMs?: number } = {}) => run('buildah', args, opts);

/** Why the image cannot be built and run here, or undefined when it can. */
export async function missingImageTools(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root: buildah mounts the image, and the test mounts /proc in it and chroots there';
  for (const tool of ['buildah', 'debootstrap', 'unshare', 'chroot']) {
    if (!findExecutable(tool)) return `${tool} not found in PATH: apt-get install buildah debootstrap`;
  }
  return undefined;
}

/** The Node release of the Dockerfile's base: ARG NODE_IMAGE=node:<version>-bookworm-slim. */
export async function dockerfileNodeVersion(): Promise<string> {
  const dockerfile = await readFile(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const version = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-bookworm-slim$/m.exec(dockerfile)?.[1];
  if (!version) throw new Error('Dockerfile: no line ARG NODE_IMAGE=node:<x.y.z>-bookworm-slim to stand in for');
  return version;
}

export interface BuiltImage {
  /** What the build args said: the image's OCI labels. */
  info: BuildInfo;
  base: string;
  baseSeconds: number;
  imageSeconds: number;
}

/**
 * The stand-in base (cached by Node version), then the Dockerfile as it is, tagged `tag`, with the
 * build args that name the build (version, revision, source, created) from package.json and git.
 */
export async function buildImage(tag: string): Promise<BuiltImage> {
  const started = performance.now();
  const info = buildInfo(REPO_ROOT);
  const labelArgs = Object.entries({ VERSION: info.version, REVISION: info.revision, SOURCE: info.source, CREATED: info.created }).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  const base = (await run('bash', [join(HERE, 'base.sh'), await dockerfileNodeVersion()], { timeoutMs: 15 * 60_000 })).split('\n').at(-1)!;
  const baseSeconds = (performance.now() - started) / 1000;
  const volumes = ['-v', `${NPM_CACHE}:/root/.npm`];
  const scratch = await mkdtemp(join(tmpdir(), 'realip-image-build-'));
  try {
    if (existsSync(HOST_CA_BUNDLE)) {
      // npm's global config in the base (/usr/local): the build's npm ci trusts what this machine trusts.
      await writeFile(join(scratch, 'npmrc'), `cafile=${HOST_CA_BUNDLE}\n`);
      volumes.push('-v', `${HOST_CA_BUNDLE}:${HOST_CA_BUNDLE}:ro`, '-v', `${join(scratch, 'npmrc')}:/usr/local/etc/npmrc:ro`);
    }
    await mkdir(NPM_CACHE, { recursive: true });
    await buildah(
      ['bud', '--isolation', 'chroot', '--pull=never', '--build-arg', `NODE_IMAGE=${base}`, ...labelArgs, ...volumes, '--tag', tag, REPO_ROOT],
      { timeoutMs: 15 * 60_000 },
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { info, base, baseSeconds, imageSeconds: (performance.now() - started) / 1000 - baseSeconds };
}

/** Removes the image if it was built at all. */
export async function removeImage(tag: string): Promise<void> {
  const exists = await buildah(['inspect', '--type', 'image', tag]).then(() => true, () => false);
  if (exists) await buildah(['rmi', tag]);
}

/** The parts of the image's configuration that say how it runs. */
export interface ImageConfig {
  Entrypoint: string[];
  WorkingDir: string;
  User: string;
  Env: string[];
  Labels: Record<string, string>;
}

export interface OpenedImage {
  /** The image's filesystem, mounted on the host (read-write here; the process gets it read-only). */
  root: string;
  config: ImageConfig;
  /** uid and gid of the image's USER (numeric in this Dockerfile). */
  uid: number;
  gid: number;
  /**
   * The ENTRYPOINT as a runtime would start it: in the image's root, mounted read-only, with /proc
   * and /dev, as USER, in WorkingDir, with the image's Env and nothing else. `shared` (a host
   * directory the image also has, like /tmp) is bound read-only at the same path, for the files a
   * test hands over. `nodeFlags` go right after `node`.
   */
  command(opts?: { nodeFlags?: string[] }): string[];
  close(): Promise<void>;
}

// Runs as the process that becomes node (unshare, sh, chroot and env each exec the next), so a
// signal sent to the spawned pid reaches the webhook and its exit code is the webhook's.
const ENTER = `set -eu
root=$1 shared=$2
shift 2
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind -o ro "$shared" "$root$shared"
mount -o remount,bind,ro "$root"
exec "$@"`;

// Working containers still open, removed if the test process exits without close().
const open = new Set<string>();
process.on('exit', () => {
  for (const name of open) {
    try {
      execFileSync('buildah', ['rm', name], { env: BUILDAH_ENV, stdio: 'ignore' });
    } catch {
      // Best effort at exit: a leftover container shows in `buildah containers`.
    }
  }
});

/** Containers and images of earlier runs that were killed before their clean-up (named by their pid). */
export async function removeLeftovers(): Promise<void> {
  const containers = (await buildah(['containers', '--format', '{{.ContainerName}}'])).split('\n');
  for (const name of containers) {
    const pid = /^realip-image-test-(\d+)$/.exec(name)?.[1];
    if (pid && !pidAlive(Number(pid))) await buildah(['rm', name]);
  }
  const images = (await buildah(['images', '--format', '{{.Name}}:{{.Tag}}'])).split('\n');
  for (const image of images) {
    const pid = /^localhost\/realip-webhook:test-(\d+)$/.exec(image)?.[1];
    if (pid && !pidAlive(Number(pid))) await removeImage(image);
  }
}

export async function openImage(image: string, shared: string): Promise<OpenedImage> {
  const name = TEST_CONTAINER;
  await buildah(['from', '--pull=never', '--name', name, image]);
  open.add(name);
  const close = async () => {
    await buildah(['rm', name]);
    open.delete(name);
  };
  try {
    const root = await buildah(['mount', name]);
    const config = (JSON.parse(await buildah(['inspect', '--type', 'image', image])) as { OCIv1: { config: ImageConfig } }).OCIv1.config;
    const [uid, gid] = config.User.split(':').map(Number) as [number, number];
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`image USER ${config.User} is not numeric uid:gid`);
    if (!existsSync(join(root, shared))) throw new Error(`${shared} does not exist in the image, so it cannot be shared at the same path`);
    const command = ({ nodeFlags = [] }: { nodeFlags?: string[] } = {}) => {
      const [node, ...rest] = config.Entrypoint;
      return [
        'unshare', '--mount', '--propagation', 'private', 'sh', '-c', ENTER, 'sh', root, shared,
        'chroot', `--userspec=${uid}:${gid}`, `--groups=${gid}`, root,
        'env', '-i', '-C', config.WorkingDir, ...config.Env,
        node!, ...nodeFlags, ...rest,
      ];
    };
    return { root, config, uid, gid, command, close };
  } catch (err) {
    await close();
    throw err;
  }
}
