// The webhook side of the e2e suite: certificates from certs/generate.sh, the real built webhook
// (dist/cli.js serve) as a child process, the shipped MutatingWebhookConfiguration adapted to
// reach it on loopback, and small helpers to read objects back from the API server.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { freePort } from '../support/net.js';
// A CommonJS package: Node's ESM loader sees only its default export.
import jsonpatch, { type Operation } from 'fast-json-patch';
import { atLeast, release, type KubernetesRelease } from '../kubernetes/release.js';
import { APISERVER, INSTALL_HINT, isExecutable, type Cluster } from './cluster.js';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
// REALIP_E2E_CLI: run another build (e.g. a deliberately broken copy, to see the suite catch it).
const CLI = process.env.REALIP_E2E_CLI ?? join(ROOT, 'dist', 'cli.js');
const GENERATE = join(ROOT, 'certs', 'generate.sh');
const SHIPPED_CONFIG = join(ROOT, 'manifests', 'base', 'mutatingwebhookconfiguration.yaml');
const BEFORE_1_30 = join(ROOT, 'manifests', 'components', 'before-1.30', 'kustomization.yaml');
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

// Any object read back from the API server; tests reach into it freely.
export type Obj = Record<string, any>;

/**
 * What the suite cannot run without, each with the command that provides it. `builtCli: false`
 * for a suite that runs the webhook from elsewhere (the image) instead of dist/cli.js.
 */
export async function missingPrerequisites({ builtCli = true } = {}): Promise<string[]> {
  const missing: string[] = [];
  for (const bin of [APISERVER, release.etcd, release.kubectl]) {
    if (!(await isExecutable(bin))) missing.push(`${bin} not found (Kubernetes ${release.version}): ${INSTALL_HINT}`);
  }
  if (!(await isExecutable(GENERATE))) missing.push(`${GENERATE} is missing or not executable`);
  if (!builtCli) return missing;
  try {
    await access(CLI);
  } catch {
    missing.push(`${CLI} not found: run npm run build first (npm run test:e2e does)`);
  }
  return missing;
}

/**
 * generateCerts(), checked: the caBundle certs/generate.sh printed is what the tests register with
 * the API server, so it must be the CA that signed the serving certificate.
 */
export function generateCertsForRegistration(dir: string): ServingCerts {
  const certs = generateCerts(dir);
  if (certs.caBundle !== readFileSync(certs.caFile).toString('base64')) {
    throw new Error(`certs/generate.sh printed a caBundle that is not base64 of ${certs.caFile}: ${certs.caBundle.slice(0, 40)}...`);
  }
  return certs;
}

export interface WebhookOptions {
  /** The cluster to watch; without one, extraArgs name the namespace source (--namespaces-file). */
  kubeconfig?: string;
  certs: ServingCerts;
  /** Where the log file goes. */
  dir: string;
  /** A name for the log file and messages. */
  name: string;
  /** Reuse a port (a restart behind the same registered URL); a free one otherwise. */
  port?: number;
  extraArgs?: string[];
  /**
   * The program and arguments up to and including `serve`: the built image's ENTRYPOINT in its
   * root, say. Default: this node running dist/cli.js (or REALIP_E2E_CLI).
   */
  command?: string[];
}

export interface Webhook {
  name: string;
  port: number;
  pid: number;
  /** The URL to register: https://127.0.0.1:<port>/mutate */
  url: string;
  /** Plain-HTTP Prometheus metrics: http://127.0.0.1:<port>/metrics */
  metricsUrl: string;
  logFile: string;
  args: string[];
  running(): boolean;
  /** The exit code once exited (null while running or when killed by a signal). */
  exitCode(): number | null;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

// Children not stopped yet; killed if the test process exits without stop().
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts `node dist/cli.js serve` (or `command`) against the cluster and waits for GET /readyz 200. */
export async function startWebhook(opts: WebhookOptions): Promise<Webhook> {
  const port = opts.port ?? (await freePort());
  const metricsPort = await freePort();
  const logFile = join(opts.dir, `${opts.name}.log`);
  const [program, ...commandArgs] = opts.command ?? [process.execPath, CLI, 'serve'];
  const args = [
    ...commandArgs,
    '--host', '127.0.0.1',
    '--port', String(port),
    '--metrics-port', String(metricsPort),
    '--tls-cert', opts.certs.certFile,
    '--tls-key', opts.certs.keyFile,
    ...(opts.kubeconfig ? ['--kubeconfig', opts.kubeconfig] : []),
    ...(opts.extraArgs ?? []),
  ];
  const fd = openSync(logFile, 'a');
  // Only what the flags say: no REALIP_* variables from the developer's shell.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REALIP_')));
  const child = spawn(program!, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  live.add(child);
  let exited = false;
  const exit = new Promise<void>((done) => {
    const finish = () => {
      exited = true;
      live.delete(child);
      done();
    };
    child.once('exit', finish);
    child.once('error', finish);
  });

  const logTail = async (lines = 40) => {
    try {
      return (await readFile(logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exit;
    clearTimeout(escalate);
  };

  const ca = await readFile(opts.certs.caFile);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    if (exited) {
      throw new Error(`webhook ${opts.name} exited (${child.exitCode ?? child.signalCode}) before /readyz:\n${await logTail()}`);
    }
    last = await probeReadyz(port, ca);
    if (last === 'HTTP 200') break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`webhook ${opts.name}: GET /readyz not 200 after ${READY_TIMEOUT_MS} ms (last: ${last}):\n${await logTail()}`);
    }
    await sleep(100);
  }
  return {
    name: opts.name,
    port,
    pid: child.pid!,
    url: `https://127.0.0.1:${port}/mutate`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    logFile,
    args,
    running: () => !exited,
    exitCode: () => child.exitCode,
    logTail,
    stop,
  };
}

// Verifies the served certificate against the CA for 127.0.0.1, as the API server will.
function probeReadyz(port: number, ca: Buffer): Promise<string> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', ca, timeout: 2_000 }, (res) => {
      res.resume();
      done(`HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => done(err.message));
    req.end();
  });
}

/**
 * manifests/base/mutatingwebhookconfiguration.yaml, parsed, exactly as shipped for the release
 * under test: before 1.30 with the JSON patch of components/before-1.30 applied, as kustomize
 * would apply it.
 */
export async function shippedWebhookConfiguration(r: KubernetesRelease = release): Promise<Obj> {
  const config = parse(await readFile(SHIPPED_CONFIG, 'utf8')) as Obj;
  if (atLeast('1.30', r)) return config;
  return withComponent(config, BEFORE_1_30);
}

/**
 * The webhook configuration with the patch of a kustomize component applied, as kustomize would
 * apply it (manifests/components/<name>/kustomization.yaml, its MutatingWebhookConfiguration patch).
 */
export async function withComponent(config: Obj, component: string): Promise<Obj> {
  const file = component.endsWith('.yaml') ? component : join(ROOT, 'manifests', 'components', component, 'kustomization.yaml');
  const patches = (parse(await readFile(file, 'utf8')) as Obj).patches as Obj[];
  const patch = patches.find((p) => p.target?.kind === 'MutatingWebhookConfiguration');
  if (!patch) throw new Error(`${file} has no patch of the MutatingWebhookConfiguration`);
  return jsonpatch.applyPatch(structuredClone(config), parse(patch.patch) as Operation[], true, false).newDocument;
}

/**
 * The shipped configuration, changed only where a loopback test must: the webhooks call `url`
 * (instead of the in-cluster Service) and trust the test CA. Everything else stays as shipped.
 */
export function adaptWebhookConfiguration(shipped: Obj, url: string, caBundle: string): Obj {
  const config = structuredClone(shipped);
  for (const webhook of config.webhooks as Obj[]) {
    const { service, ...rest } = webhook.clientConfig as Obj;
    if (!service) throw new Error(`shipped webhook ${webhook.name} has no clientConfig.service to replace`);
    webhook.clientConfig = { ...rest, url, caBundle };
  }
  return config;
}

/** Parses `kubectl ... -o json`. */
export async function getJson(cluster: Cluster, args: string[]): Promise<Obj> {
  const { stdout } = await cluster.kubectl(['get', ...args, '-o', 'json']);
  return JSON.parse(stdout) as Obj;
}

/** Polls until `probe` returns a value (not undefined), or fails after `timeoutMs` with the last reason. */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 20_000, intervalMs = 200 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError}`);
    await sleep(intervalMs);
  }
}

/** A multi-document YAML stream for `kubectl <verb> -f -`, objects in order. */
export function manifestStream(...objects: Obj[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

/**
 * `test` for the scenarios of a suite: each has `timeoutMs`, and a failure prints the log tail of
 * every webhook in `started` as diagnostics.
 */
export function scenarioRunner(started: readonly Webhook[], timeoutMs: number) {
  return (name: string, fn: (t: TestContext) => Promise<void>, options: { skip?: string; todo?: string } = {}) =>
    test(name, { timeout: timeoutMs, ...options }, async (t) => {
      try {
        await fn(t);
      } catch (err) {
        for (const w of started) {
          t.diagnostic(`--- webhook ${w.name} log (tail, ${w.logFile}) ---`);
          for (const line of (await w.logTail(25)).split('\n')) t.diagnostic(line);
        }
        throw err;
      }
    });
}

/** The webhook's one-line admission summaries (pino JSON, msg "admission"), for checking who answered what. */
export async function admissionLog(webhook: Webhook): Promise<Obj[]> {
  const lines = (await readFile(webhook.logFile, 'utf8')).split('\n').filter(Boolean);
  return lines.map((l) => JSON.parse(l) as Obj).filter((l) => l.msg === 'admission');
}
