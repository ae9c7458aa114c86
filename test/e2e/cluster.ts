// A real, throwaway Kubernetes control plane (etcd + kube-apiserver) on
// loopback for the e2e tests. No scheduler/controller-manager/kubelet: objects
// are stored, defaulted and admitted (webhooks included) but Pods never run.
// test:node starts it with `podAddress` and runs the rest of a cluster beside it (test/node).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atLeast, release as releaseUnderTest, type KubernetesRelease } from '../kubernetes/release.js';
import { freePorts } from '../support/net.js';

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Cluster {
  kubeconfig: string;
  server: string;
  token: string;
  dir: string;
  /** The CA of the API server's serving certificate (its self-signed certificate holds both). */
  caFile: string;
  /** The key that signs ServiceAccount tokens, for kube-controller-manager. */
  serviceAccountKeyFile: string;
  kubectl(args: string[], opts?: { stdin?: string; allowFail?: boolean }): Promise<KubectlResult>;
  /**
   * Stops the API server and etcd and starts both again on an empty data directory, as after a
   * restore from an empty backup: resourceVersions start over. Same ports, certificates and
   * token, so every kubeconfig keeps working.
   */
  restartOnEmptyStorage(): Promise<void>;
  /** The kube-apiserver's process id, for reading its CPU time. */
  apiserverPid(): number;
  stop(): Promise<void>;
}

export const KUBERNETES_BIN_DIR = releaseUnderTest.binDir;
export const APISERVER = `${KUBERNETES_BIN_DIR}/kube-apiserver`;
export const INSTALL_HINT = releaseUnderTest.installHint;
const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;

export interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  done: boolean;
  exited: Promise<void>;
}

// Children not stopped yet; killed if the test process exits without stop().
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ClusterOptions {
  release?: KubernetesRelease;
  apiserverArgs?: string[];
  /**
   * For a cluster whose Pods run: the API server binds and advertises this address (on the host,
   * not loopback, which a Pod's network namespace has its own of), keeps the kubernetes Service's
   * endpoints, admits ServiceAccount tokens, and has a Service range wider than a /24.
   */
  podAddress?: string;
}

/** A control plane of the release under test (KUBE_VERSION), or of the one given. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const release = opts.release ?? releaseUnderTest;
  const apiserverBin = `${release.binDir}/kube-apiserver`;
  const etcdBin = release.etcd;
  const kubectlBin = release.kubectl;
  for (const bin of [apiserverBin, etcdBin, kubectlBin]) {
    if (!(await isExecutable(bin))) throw new Error(`${bin} not found: ${release.installHint}`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'realip-e2e-'));
  const certDir = join(dir, 'certs');
  const kubeconfig = join(dir, 'kubeconfig');
  const token = randomBytes(24).toString('hex');
  const [etcdPort, peerPort, securePort] = (await freePorts(3)) as [number, number, number];
  const address = opts.podAddress ?? '127.0.0.1';
  const server = `https://${address}:${securePort}`;
  const caFile = join(certDir, 'apiserver.crt');

  await mkdir(certDir);
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(join(dir, 'sa.pub'), publicKey);
  await writeFile(join(dir, 'sa.key'), privateKey, { mode: 0o600 });
  await writeFile(join(dir, 'tokens.csv'), `${token},admin,1,system:masters\n`, { mode: 0o600 });
  // The apiserver's self-signed cert (written at startup) has 127.0.0.1 as an IP SAN
  // and its CA in the same file, so it can serve as certificate-authority.
  await writeFile(kubeconfig, JSON.stringify(kubeconfigFor(server, caFile, token), null, 2), { mode: 0o600 });

  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  // A custom client URL needs an advertise URL, and a custom peer URL must match
  // --initial-cluster, otherwise etcd falls back to localhost:2380.
  const etcdArgs = [
    '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', etcdUrl,
    '--advertise-client-urls', etcdUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `default=${peerUrl}`,
  ];
  const apiserverArgs = [
    '--etcd-servers', etcdUrl,
    '--secure-port', String(securePort),
    '--bind-address', address,
    '--advertise-address', address,
    // Without Pods, no endpoints for the kubernetes Service: newer releases refuse a loopback
    // address there, and nothing dials the API server through that Service.
    ...(opts.podAddress ? [] : ['--endpoint-reconciler-type', 'none']),
    // Removed in 1.24; before that the unauthenticated port is on by default.
    ...(atLeast('1.24', release) ? [] : ['--insecure-port', '0']),
    '--service-cluster-ip-range', opts.podAddress ? '10.0.0.0/16' : '10.0.0.0/24',
    '--cert-dir', certDir,
    '--service-account-issuer', 'https://kubernetes.default.svc',
    '--service-account-key-file', join(dir, 'sa.pub'),
    '--service-account-signing-key-file', join(dir, 'sa.key'),
    '--token-auth-file', join(dir, 'tokens.csv'),
    '--authorization-mode', 'RBAC',
    // Without Pods no kubelet requests ServiceAccount tokens, so this plugin would reject every Pod.
    ...(opts.podAddress ? [] : ['--disable-admission-plugins', 'ServiceAccount']),
    ...(opts.apiserverArgs ?? []),
  ];
  let etcd = startProcess('etcd', etcdBin, dir, etcdArgs);
  let apiserver = startProcess('kube-apiserver', apiserverBin, dir, apiserverArgs);

  const kubectl = (args: string[], o: { stdin?: string; allowFail?: boolean } = {}) =>
    // Own discovery cache: the default ~/.kube/cache would collect one entry per random port.
    runKubectl(kubectlBin, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'kube-cache')], args, o);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await stopProcess(apiserver);
      await stopProcess(etcd);
      await rm(dir, { recursive: true, force: true });
    })());

  const ready = async () => {
    try {
      const deadline = Date.now() + START_TIMEOUT_MS;
      await waitFor('/readyz', deadline, [etcd, apiserver], () => readyz(server, token, caFile));
      // The apiserver creates the default namespace shortly after it is ready.
      await waitFor('namespace "default"', deadline, [etcd, apiserver], async () => {
        const r = await kubectl(['get', 'namespace', 'default'], { allowFail: true });
        return r.code === 0 || r.stderr.trim();
      });
    } catch (err) {
      const logs = await Promise.all([apiserver, etcd].map(async (p) => `--- ${p.name} log (tail) ---\n${await tail(p.log)}`));
      await stop();
      throw new Error(`cluster did not start: ${(err as Error).message}\n${logs.join('\n')}`);
    }
  };
  await ready();

  const restartOnEmptyStorage = async () => {
    await stopProcess(apiserver);
    await stopProcess(etcd);
    await rm(join(dir, 'etcd'), { recursive: true, force: true });
    // The cert dir keeps the API server's self-signed certificate: kubeconfigs still trust it.
    etcd = startProcess('etcd', etcdBin, dir, etcdArgs);
    apiserver = startProcess('kube-apiserver', apiserverBin, dir, apiserverArgs);
    await ready();
  };

  const serviceAccountKeyFile = join(dir, 'sa.key');
  return { kubeconfig, server, token, dir, caFile, serviceAccountKeyFile, kubectl, restartOnEmptyStorage, apiserverPid: () => apiserver.child.pid!, stop };
}

function kubeconfigFor(server: string, caFile: string, token: string) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: 'admin', user: { token } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'admin' } }],
    'current-context': 'e2e',
  };
}

export async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `opts.env` replaces the environment and `opts.cwd` is the working directory (both inherited by default). */
export function startProcess(name: string, bin: string, dir: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const log = join(dir, `${name}.log`);
  // Output goes straight to a file: nothing to drain, and it survives for the error message.
  const fd = openSync(log, 'a');
  const child = spawn(bin, args, { ...opts, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  // Unref'd: a test that forgets stop() must not hang; the exit handler then kills it.
  child.unref();
  live.add(child);
  const proc: Proc = {
    name,
    child,
    log,
    done: false,
    exited: new Promise((resolve) => {
      const finish = () => {
        proc.done = true;
        live.delete(child);
        resolve();
      };
      child.once('exit', finish);
      child.once('error', finish);
    }),
  };
  return proc;
}

export async function stopProcess(p: Proc): Promise<void> {
  if (p.done) return;
  p.child.kill('SIGTERM');
  const escalate = setTimeout(() => p.child.kill('SIGKILL'), STOP_GRACE_MS);
  await p.exited;
  clearTimeout(escalate);
}

// probe() returns true when done, or a string saying why not yet (used in the timeout error).
async function waitFor(what: string, deadline: number, procs: Proc[], probe: () => Promise<true | string>): Promise<void> {
  let last = '';
  for (;;) {
    const dead = procs.find((p) => p.done);
    if (dead) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}) while waiting for ${what}`);
    const result = await probe();
    if (result === true) return;
    last = result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(250);
  }
}

function readyz(server: string, token: string, caFile: string): Promise<true | string> {
  let ca: Buffer;
  try {
    ca = readFileSync(caFile);
  } catch {
    return Promise.resolve(`${caFile} not written yet`);
  }
  return new Promise((resolve) => {
    const req = request(`${server}/readyz`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? true : `HTTP ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
}

function runKubectl(
  bin: string,
  globalArgs: string[],
  args: string[],
  opts: { stdin?: string; allowFail?: boolean },
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, [...globalArgs, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      // A numeric code is kubectl's exit status; anything else (spawn failure, signal) is a real error.
      if (err && typeof err.code !== 'number') return reject(err);
      const code = err ? (err.code as number) : 0;
      if (code !== 0 && !opts.allowFail) {
        return reject(new Error(`kubectl ${args.join(' ')} failed (exit ${code}): ${stderr.trim()}`));
      }
      resolve({ stdout, stderr, code });
    });
    // kubectl may exit before it reads stdin; its exit status and stderr say why, so a write
    // error (EPIPE) on the pipe is not the error to report.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.stdin ?? '');
  });
}

export async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}
