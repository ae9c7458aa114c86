// Istio's own parts for the Istio suite, built by install-istio.sh from the module pinned in
// go.mod: istioctl (manifests, kube-inject) and istiod (pilot-discovery), whose sidecar injection
// webhook runs on loopback against the suite's API server.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { isExecutable, startProcess, stopProcess, tail, type Cluster, type Proc } from '../e2e/cluster.js';
import { ROOT, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import type { ServingCerts } from '../support/certs.js';
import { freePorts } from '../support/net.js';

const run = promisify(execFile);
const CACHE = '/var/cache/realip-webhook';
const ISTIO_MODULE_VERSION = /^require istio\.io\/istio (\S+)$/m.exec(readFileSync(join(ROOT, 'test', 'istio', 'go.mod'), 'utf8'))![1]!;
const ISTIO_BIN_DIR = `${CACHE}/istio-${ISTIO_MODULE_VERSION}`;
export const ISTIOCTL = `${ISTIO_BIN_DIR}/istioctl`;
const PILOT_DISCOVERY = `${ISTIO_BIN_DIR}/pilot-discovery`;
export const ISTIO_NAMESPACE = 'istio-system';
const INJECTOR_CONFIGMAP = 'istio-sidecar-injector';
const START_TIMEOUT_MS = 90_000;

export async function missingIstio(): Promise<string[]> {
  const missing: string[] = [];
  for (const bin of [ISTIOCTL, PILOT_DISCOVERY]) {
    if (!(await isExecutable(bin))) missing.push(`${bin} not found: run bash test/istio/install-istio.sh first`);
  }
  return missing;
}

/** What istioctl says it is, e.g. "1.31-dev", with the pinned module version. */
export async function istioVersion(): Promise<string> {
  const { stdout } = await run(ISTIOCTL, ['version', '--remote=false', '--short']);
  return `${stdout.trim().replace(/^client version: /, '')} (istio.io/istio ${ISTIO_MODULE_VERSION})`;
}

export interface IstioManifest {
  crds: Obj[];
  /** ConfigMap istio: the mesh config. */
  mesh: Obj;
  /** ConfigMap istio-sidecar-injector: the injection template (config) and its values. */
  injector: Obj;
  /** MutatingWebhookConfiguration istio-sidecar-injector, as a cluster install registers it. */
  injectorWebhook: Obj;
}

/** `istioctl manifest generate` (offline: the charts are compiled in), with Istio CNI or without. */
export async function generateIstioManifest(opts: { cni: boolean }): Promise<IstioManifest> {
  const args = ['manifest', 'generate', ...(opts.cni ? ['--set', 'components.cni.enabled=true'] : [])];
  const { stdout } = await run(ISTIOCTL, args, { maxBuffer: 256 * 1024 * 1024 });
  const objects = parseAllDocuments(stdout).map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null);
  const one = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
    if (!found) throw new Error(`istioctl manifest generate has no ${kind} ${name}`);
    return found;
  };
  return {
    crds: objects.filter((o) => o.kind === 'CustomResourceDefinition'),
    mesh: one('ConfigMap', 'istio'),
    injector: one('ConfigMap', INJECTOR_CONFIGMAP),
    injectorWebhook: one('MutatingWebhookConfiguration', 'istio-sidecar-injector'),
  };
}

/** The generated injector configuration, changed only to call istiod on loopback and trust its CA. */
export function adaptInjectorWebhook(config: Obj, port: number, caBundle: string): Obj {
  const adapted = structuredClone(config);
  for (const webhook of adapted.webhooks as Obj[]) {
    const { service } = webhook.clientConfig as Obj;
    if (!service) throw new Error(`generated webhook ${webhook.name} has no clientConfig.service`);
    webhook.clientConfig = { url: `https://127.0.0.1:${port}${service.path ?? '/'}`, caBundle };
  }
  return adapted;
}

export interface Istiod {
  /** The injection webhook's port (istiod's --httpsAddr). */
  webhookPort: number;
  proc: Proc;
  /** istiod's TCP and UDP sockets, from ss: local addresses it listens on, remote ones it talks to. */
  sockets(): Promise<{ listening: string[]; peers: string[] }>;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * istiod outside a cluster: its kubeconfig is the suite's API server, every listener on
 * 127.0.0.1, the serving certificate ours (its own would name istiod.istio-system.svc, not
 * 127.0.0.1), and no webhook patcher (we register the configurations ourselves).
 */
export async function startIstiod(cluster: Cluster, dir: string, certs: ServingCerts): Promise<Istiod> {
  const [http, https, grpc, secureGrpc, monitoring, ctrlz] = (await freePorts(6)) as [number, number, number, number, number, number];
  const home = join(dir, 'istiod');
  // Its working directory: istiod looks for ./etc/istio/config/mesh and ./var/lib/istio/inject
  // there, finds neither, and so reads both from the ConfigMaps, as in a cluster.
  await mkdir(home, { recursive: true });
  const loopback = (port: number) => `127.0.0.1:${port}`;
  const args = [
    'discovery',
    '--kubeconfig', cluster.kubeconfig,
    '--httpAddr', loopback(http),
    '--httpsAddr', loopback(https),
    '--grpcAddr', loopback(grpc),
    '--secureGRPCAddr', loopback(secureGrpc),
    '--monitoringAddr', loopback(monitoring),
    '--ctrlz_address', '127.0.0.1',
    '--ctrlz_port', String(ctrlz),
    '--tlsCertFile', certs.certFile,
    '--tlsKeyFile', certs.keyFile,
    '--caCertFile', certs.caFile,
  ];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    POD_NAMESPACE: ISTIO_NAMESPACE,
    POD_NAME: 'istiod-loopback',
    // Empty: no caBundle patching of webhook configurations.
    INJECTION_WEBHOOK_CONFIG_NAME: '',
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
  };
  const proc = startProcess('istiod', PILOT_DISCOVERY, dir, args, { env, cwd: home });
  const istiod: Istiod = {
    webhookPort: https,
    proc,
    sockets: async () => {
      const { stdout } = await run('ss', ['-Htuanp']);
      // Netid State Recv-Q Send-Q Local Peer Process
      const mine = stdout.split('\n').filter((l) => l.includes(`pid=${proc.child.pid},`)).map((l) => l.trim().split(/\s+/));
      const listening = mine.filter((c) => c[1] === 'LISTEN' || c[1] === 'UNCONN');
      return { listening: listening.map((c) => c[4]!), peers: mine.filter((c) => !listening.includes(c)).map((c) => c[5]!) };
    },
    logTail: (lines = 30) => tail(proc.log, lines),
    stop: () => stopProcess(proc),
  };
  try {
    // The injection server answers once istiod has read the injector ConfigMap.
    await pollUntil('istiod to serve its injection webhook', async () => {
      if (proc.done) throw new Error(`istiod exited (${proc.child.exitCode ?? proc.child.signalCode})`);
      return (await status(https, certs.caPem)) === 'ready' ? true : undefined;
    }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 500 });
  } catch (err) {
    const log = await istiod.logTail();
    await istiod.stop();
    throw new Error(`${(err as Error).message}\n--- istiod log (tail) ---\n${log}`, { cause: err });
  }
  return istiod;
}

// GET /inject on the webhook port: 405/400 means the injector is mounted; 404 means not yet.
function status(port: number, ca: string): Promise<string> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: '/inject', ca, timeout: 2_000 }, (res) => {
      res.resume();
      done(res.statusCode === 404 ? 'no injector yet' : 'ready');
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => done(err.message));
    req.end();
  });
}
