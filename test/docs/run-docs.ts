// Runs the docs' marked blocks as a user would (docs/testing.md, "The docs test"): in a copy of
// the checkout, one per Markdown file, with bash; compares what they print with what the docs
// show. Shared by test/docs/docs.test.ts (no cluster) and test/e2e/docs.test.ts (cluster blocks).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { noClusterEnv } from '../support/cli.js';
import { freePorts } from '../support/net.js';
import { REPO_ROOT } from '../support/repo.js';
import { docFiles, outputMismatch, parseBlocks, type Block, type RunBlock } from './doc-blocks.js';

/** What a cluster block runs against; the e2e test supplies it. */
export interface DocsCluster {
  kubeconfig: string;
  stop(): Promise<void>;
}

export interface DocsRunOptions {
  /** 'local': run serve and run blocks, skip cluster ones. 'cluster': run the cluster blocks only. */
  mode: 'local' | 'cluster';
  startCluster?: () => Promise<DocsCluster>;
  /**
   * The kubectl of the release the cluster runs (test/kubernetes/release.ts): cluster blocks find
   * it first on PATH as `kubectl`, so the docs run the client a user of that release has, never
   * the machine's.
   */
  kubectl?: string;
}

const SERVE_PORT = '127.0.0.1:8443';
const READY_TIMEOUT_MS = 180_000;
const BLOCK_TIMEOUT_MS = 180_000;

/** The helm binary of test/helm/install-helm.sh when it is installed (never installs it). */
function installedHelm(): string | undefined {
  const prefix = process.env['HELM_CACHE'] ?? '/var/cache/realip-webhook';
  const helm = join(prefix, `helm-layer-${process.env['HELM_LAYER_VERSION'] ?? '2.2.2'}`, 'bin', 'helm', 'helm');
  return existsSync(helm) ? helm : undefined;
}

/**
 * A copy of the checkout as git sees it (tracked and untracked files that are not ignored, as
 * they are in the working tree), node_modules linked, built once: what a user has after
 * `npm install && npm run build`. Each file's blocks then run in a copy of this.
 */
let template: string | undefined;
function checkoutTemplate(): string {
  if (template) return template;
  const dir = mkdtempSync(join(tmpdir(), 'realip-docs-'));
  try {
    template = copyCheckout(join(dir, 'checkout'));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return template;
}

function copyCheckout(checkout: string): string {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    if (f === 'node_modules' || !existsSync(join(REPO_ROOT, f))) continue; // linked below; deleted in the working tree
    mkdirSync(dirname(join(checkout, f)), { recursive: true });
    const source = join(REPO_ROOT, f);
    if (lstatSync(source).isSymbolicLink()) symlinkSync(readlinkSync(source), join(checkout, f));
    else cpSync(source, join(checkout, f));
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(checkout, 'node_modules'));
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: checkout, env: blockEnv(dirname(checkout)), stdio: ['ignore', 'pipe', 'pipe'] });
  return checkout;
}
process.on('exit', () => {
  if (template) rmSync(dirname(template), { recursive: true, force: true });
});

/** No cluster, no REALIP_* settings, a HOME of its own; this test's node first on PATH. */
function blockEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = noClusterEnv(home);
  env['PATH'] = `${dirname(process.execPath)}:${env['PATH'] ?? ''}`;
  return { ...env, ...extra };
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Result {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, encoding: 'utf8', timeout: BLOCK_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The README's set-up: `npm start` in the background on free ports; stopped by the returned function. */
async function startServe(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ port: number; stop: () => Promise<void>; output: () => string }> {
  const lines = script.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  if (lines.join('\n') !== 'npm install && npm start\nnpm test') {
    throw new Error(`the set-up must be exactly the two commands \`npm install && npm start\` and \`npm test\`; it is:\n${script}`);
  }
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  let output = '';
  const child: ChildProcess = spawn('npm', ['start'], {
    cwd,
    env: { ...env, REALIP_PORT: String(port), REALIP_METRICS_PORT: String(metricsPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: npm, the shell it runs and node stop together
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    if (exited) return;
    process.kill(-child.pid!, 'SIGTERM');
    for (let i = 0; i < 50 && !exited; i++) await sleep(100);
    if (!exited) process.kill(-child.pid!, 'SIGKILL');
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await ready(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`npm start did not get ready on port ${port}${exited ? ' (it exited)' : ''}:\n${output}`);
    }
    await sleep(250);
  }
  return { port, stop, output: () => output };
}

function ready(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** The suite that runs a block other than this one, if any: the block is then left to it. */
function otherSuite(block: Block, mode: DocsRunOptions['mode']): string | undefined {
  if (block.kind === 'skip') return mode === 'cluster' ? 'npm test' : undefined;
  if (block.kind === 'serve') return mode === 'cluster' ? 'npm test' : undefined;
  if (mode === 'local' && block.cluster) return 'npm run test:e2e';
  if (mode === 'cluster' && !block.cluster) return 'npm test';
  return undefined;
}

function why(block: Block, helm: string | undefined): string | undefined {
  if (block.kind === 'skip') return `not runnable here: ${block.reason}`;
  if (block.kind === 'run' && block.needsHelm && !helm) return 'needs helm: bash test/helm/install-helm.sh installs it';
  return undefined;
}

/** The API server's version, as `kubectl version` reads it. */
function serverVersion(kubectl: string, kubeconfig: string, home: string): { minor: number; gitVersion: string } {
  const out = execFileSync(kubectl, ['version', '-o', 'json'], { env: blockEnv(home, { KUBECONFIG: kubeconfig }), encoding: 'utf8' });
  const v = (JSON.parse(out) as { serverVersion: { minor: string; gitVersion: string } }).serverVersion;
  return { minor: parseInt(v.minor, 10), gitVersion: v.gitVersion };
}

function check(block: RunBlock, r: Result, where: string): void {
  const shown = `\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
  if (r.code !== block.exit) throw new Error(`${where}: exit status ${r.code}, the docs expect ${block.exit}${shown}`);
  for (const stream of ['stdout', 'stderr'] as const) {
    const documented = block[stream];
    if (!documented) continue;
    const m = outputMismatch(documented, r[stream]);
    if (m) throw new Error(`${where}: ${stream} differs from the ${stream} shown at line ${documented.line}: ${m}`);
  }
}

/** One subtest per marked block of every doc file, in order. */
export async function runDocs(t: TestContext, opts: DocsRunOptions): Promise<void> {
  const helm = installedHelm();
  for (const file of docFiles(REPO_ROOT)) {
    const all = parseBlocks(file, readFileSync(join(REPO_ROOT, file), 'utf8'));
    const elsewhere = all.filter((b) => otherSuite(b, opts.mode));
    if (elsewhere.length > 0) t.diagnostic(`${file}: ${elsewhere.length} block(s) run by ${[...new Set(elsewhere.map((b) => otherSuite(b, opts.mode)))].join(', ')}`);
    const blocks = all.filter((b) => !otherSuite(b, opts.mode));
    if (blocks.length === 0) continue;
    await t.test(file, async (ft) => {
      let dir: string | undefined;
      let serve: Awaited<ReturnType<typeof startServe>> | undefined;
      let cluster: DocsCluster | undefined;
      try {
        for (const block of blocks) {
          const where = `${file}:${block.line}`;
          const title = `${where} ${firstLine(block.script)}`;
          await ft.test(title, async (bt) => {
            const reason = why(block, helm);
            if (reason) return bt.skip(reason);
            if (!dir) {
              dir = mkdtempSync(join(tmpdir(), 'realip-docs-file-'));
              cpSync(checkoutTemplate(), join(dir, 'checkout'), { recursive: true, verbatimSymlinks: true });
            }
            const cwd = join(dir, 'checkout');
            const home = join(dir, 'home');
            mkdirSync(home, { recursive: true });
            if (block.kind === 'serve') {
              serve = await startServe(block.script, cwd, blockEnv(home));
              return;
            }
            if (block.kind !== 'run') return;
            const extra: NodeJS.ProcessEnv = {};
            if (block.cluster) {
              if (!opts.startCluster) throw new Error('cluster blocks need a cluster');
              if (block.fresh && cluster) {
                await cluster.stop();
                cluster = undefined;
              }
              cluster ??= await opts.startCluster();
              extra['KUBECONFIG'] = cluster.kubeconfig;
              if (!opts.kubectl) throw new Error('cluster blocks need the kubectl of the release under test');
              const version = serverVersion(opts.kubectl, cluster.kubeconfig, home);
              if (block.minMinor !== undefined && version.minor < block.minMinor) {
                return bt.skip(`needs Kubernetes 1.${block.minMinor} or newer; this API server is ${version.gitVersion}`);
              }
            }
            const env = blockEnv(home, extra);
            if (block.cluster) env['PATH'] = `${kubectlDir(dir, opts.kubectl!)}:${env['PATH']}`;
            if (block.needsHelm) env['PATH'] = `${dirname(helm!)}:${env['PATH']}`;
            if (block.before) {
              const b = bash(block.before, cwd, env);
              if (b.code !== 0) throw new Error(`${where}: the block's before: command failed (${b.code}): ${b.stdout}${b.stderr}`);
            }
            const script = serve ? block.script.replaceAll(SERVE_PORT, `127.0.0.1:${serve.port}`) : block.script;
            check(block, bash(script, cwd, env), where);
          });
        }
      } finally {
        await serve?.stop();
        await cluster?.stop();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

/** A directory holding only `kubectl`, a link to the release's: first on PATH, it shadows the machine's. */
function kubectlDir(dir: string, kubectl: string): string {
  const bin = join(dir, 'kubectl-bin');
  if (!existsSync(bin)) {
    mkdirSync(bin);
    symlinkSync(kubectl, join(bin, 'kubectl'));
  }
  return bin;
}

function firstLine(script: string): string {
  const line = script.split('\n').find((l) => l.trim() && !l.trim().startsWith('#')) ?? '';
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}
