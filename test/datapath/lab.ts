// A two-node "cluster" whose data path is real: a LAN bridge, a client, node1 and node2 in network
// namespaces, a pod behind node1, and the real kube-proxy in each node namespace, programmed by
// the real kube-apiserver of the e2e suite (on host loopback) with the built webhook registered.
// There is no kubelet: the pod is a node:http server that replies with the source address it sees,
// and its EndpointSlice is written by hand.
//
//   client 198.51.100.100 ─┐
//   node1  198.51.100.11  ─┼─ bridge (own namespace)      pod 203.0.113.10/32 ── veth ── node1
//   node2  198.51.100.12  ─┘                              node2 routes 203.0.113.0/25 via node1
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { KUBERNETES_BIN_DIR, INSTALL_HINT, isExecutable, tail } from '../e2e/cluster.js';
import { findExecutable } from '../support/executables.js';
import { atLeast } from '../kubernetes/release.js';
import { ROOT, getJson, manifestStream, missingPrerequisites, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import { startClusterWithWebhook, type ClusterWithWebhook } from './cluster-with-webhook.js';
import { NetnsSet, logDirPrefix, sweepLeftovers } from './netns.js';

export const CLIENT_IP = '198.51.100.100';
export const NODE_IPS = { node1: '198.51.100.11', node2: '198.51.100.12' } as const;
export type NodeName = keyof typeof NODE_IPS;
export const NODE_NAMES = Object.keys(NODE_IPS) as NodeName[];
const LAN_PREFIX = 24;
const POD_IP = '203.0.113.10';
const POD_PORT = 8080;
const CLUSTER_CIDR = '203.0.113.0/24';
const KUBE_PROXY = `${KUBERNETES_BIN_DIR}/kube-proxy`;
/** Long enough for a slow answer on a busy machine, short because node2 drops Local traffic. */
const PROBE_TIMEOUT_MS = 3_000;
const PROGRAMMED_TIMEOUT_MS = 30_000;
const HOSTNAME = 'kubernetes.io/hostname';

/** The pod: replies with the source address of the connection, as an app reading it would. */
const POD_SERVER = `require('node:http')
  .createServer((req, res) => res.end(req.socket.remoteAddress))
  .listen(${POD_PORT}, '${POD_IP}', () => console.log('listening'));`;

/** The client: one GET, printed as JSON; a timeout is an answer too (a node that drops traffic). */
const HTTP_GET = `const [url, ms] = process.argv.slice(1);
fetch(url, { signal: AbortSignal.timeout(Number(ms)) }).then(
  async (res) => console.log(JSON.stringify({ status: res.status, body: await res.text() })),
  (err) => console.log(JSON.stringify({ error: err.name === 'TimeoutError' ? 'timeout' : String(err.cause?.code ?? err.message) })),
).finally(() => process.exit(0));`;

export type HttpAnswer = { status: number; body: string } | { error: string };

export type ProxyMode = 'iptables' | 'nftables';

/** The proxy modes the release under test has: nftables from 1.29 (GA in 1.33). */
export const PROXY_MODES: ProxyMode[] = atLeast('1.33') ? ['iptables', 'nftables'] : ['iptables'];

/** What the datapath suite needs beyond the e2e suite's prerequisites, each with its fix. */
export async function missingDatapathPrerequisites(): Promise<string[]> {
  const missing = await missingPrerequisites();
  if (!(await isExecutable(KUBE_PROXY))) missing.push(`kube-proxy not found at ${KUBE_PROXY}: ${INSTALL_HINT}`);
  const tools = ['ip', 'iptables', 'iptables-save', 'conntrack', 'socat', ...(PROXY_MODES.includes('nftables') ? ['nft'] : [])];
  for (const tool of tools) {
    if (!findExecutable(tool, [`/usr/sbin/${tool}`, `/sbin/${tool}`])) missing.push(`${tool} not found in PATH: ${INSTALL_HINT}`);
  }
  return missing;
}

export interface Lab extends ClusterWithWebhook {
  dir: string;
  /** Waits until the webhook mutates Services in `ns` (the API server and the webhook cache labels briefly). */
  waitUntilMutating(ns: string): Promise<void>;
  /** Waits until both kube-proxies have programmed the Service's node port with its current policy. */
  waitProgrammed(ns: string, name: string): Promise<Obj>;
  /** GET http://<node IP>:<port>/ from the client namespace. */
  get(node: NodeName, port: number): Promise<HttpAnswer>;
  /** `realip-webhook <command>` of the built CLI against the cluster (audit, explain). */
  cli(command: 'audit' | 'explain', args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Log tails of every process, for a failure message. */
  logs(): Promise<string>;
}

/** The Service a user would write: no externalTrafficPolicy. */
export function service(name: string, ns: string, type: 'NodePort' | 'LoadBalancer'): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { type, selector: { app: name }, ports: [{ port: 80, targetPort: POD_PORT, protocol: 'TCP' }] },
  };
}

/** The Pod object behind node1's pod server, as the scheduler would leave it (no kubelet runs it). */
export function pod(serviceName: string, ns: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${serviceName}-pod`, namespace: ns, labels: { app: serviceName } },
    spec: { nodeName: 'node1', containers: [{ name: 'app', image: 'registry.k8s.io/echoserver:1.4' }] },
  };
}

/** What the endpoint-slice controller would write for the pod behind node1 (there is no kubelet to report it). */
export function endpointSlice(serviceName: string, ns: string): Obj {
  // discovery.k8s.io/v1 (1.21+) names the endpoint's node; kube-proxy 1.20 reads v1beta1's topology key.
  const [apiVersion, onNode1] = atLeast('1.21')
    ? ['discovery.k8s.io/v1', { nodeName: 'node1' }]
    : ['discovery.k8s.io/v1beta1', { topology: { [HOSTNAME]: 'node1' } }];
  return {
    apiVersion,
    kind: 'EndpointSlice',
    metadata: { name: `${serviceName}-pod`, namespace: ns, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    ports: [{ name: '', port: POD_PORT, protocol: 'TCP' }],
    endpoints: [{ addresses: [POD_IP], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `${serviceName}-pod`, namespace: ns }, ...onNode1 }],
  };
}

function node(name: NodeName): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { [HOSTNAME]: name } },
    // Ready, as a kubelet would report it: explain counts only ready, schedulable nodes.
    status: {
      addresses: [{ type: 'InternalIP', address: NODE_IPS[name] }, { type: 'Hostname', address: name }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'set by the test' }],
    },
  };
}

/** A unix socket on the host that forwards each connection to the API server on loopback. */
async function apiRelay(socketPath: string, apiPort: number): Promise<{ close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = createConnection({ host: '127.0.0.1', port: apiPort });
    for (const s of [down, up]) {
      open.add(s);
      s.once('close', () => open.delete(s));
      s.once('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Builds the namespaces and links. Nothing is created in the host's network namespace. */
async function buildTopology(netns: NetnsSet): Promise<void> {
  for (const short of ['lan', 'client', 'node1', 'node2', 'pod']) await netns.add(short);
  await netns.ip('lan', 'link', 'add', 'br0', 'type', 'bridge');
  await netns.ip('lan', 'link', 'set', 'br0', 'up');
  const lanHosts: [string, string][] = [['client', CLIENT_IP], ['node1', NODE_IPS.node1], ['node2', NODE_IPS.node2]];
  for (const [short, ip] of lanHosts) {
    await netns.ip('lan', 'link', 'add', `to-${short}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns.name(short));
    await netns.ip('lan', 'link', 'set', `to-${short}`, 'master', 'br0', 'up');
    await netns.ip(short, 'addr', 'add', `${ip}/${LAN_PREFIX}`, 'dev', 'eth0');
    await netns.ip(short, 'link', 'set', 'eth0', 'up');
  }
  // node1's end of the pod's veth has no IPv4 address: SNAT would otherwise pick it, and the pod
  // would see it instead of node1's LAN address.
  await netns.ip('node1', 'link', 'add', 'to-pod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns.name('pod'));
  await netns.ip('node1', 'link', 'set', 'to-pod', 'up');
  await netns.ip('node1', 'route', 'add', `${POD_IP}/32`, 'dev', 'to-pod');
  await netns.ip('pod', 'addr', 'add', `${POD_IP}/32`, 'dev', 'eth0');
  await netns.ip('pod', 'link', 'set', 'eth0', 'up');
  await netns.ip('pod', 'route', 'add', 'default', 'via', NODE_IPS.node1, 'dev', 'eth0', 'onlink');
  // node2 reaches the pod network through node1, as a CNI's routes would.
  await netns.ip('node2', 'route', 'add', '203.0.113.0/25', 'via', NODE_IPS.node1);
  // /proc/sys/net is the namespace's own; written directly because minimal Debian has no sysctl.
  for (const n of NODE_NAMES) await netns.exec(n, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
}

async function waitForLine(file: string, line: string, what: string, alive: () => boolean): Promise<void> {
  await pollUntil(what, async () => {
    if (!alive()) throw new Error(`${what}: the process exited`);
    return (await readFile(file, 'utf8').catch(() => '')).includes(line) ? true : undefined;
  }, { timeoutMs: 15_000, intervalMs: 100 });
}

type Policy = 'Local' | 'Cluster';

/**
 * The policy kube-proxy's iptables mode programmed for a node port (undefined: not yet). 1.20
 * jumps to KUBE-XLB (Local) or KUBE-SVC (Cluster); newer releases always jump to KUBE-EXT, whose
 * masquerade rule covers only the node's own traffic under Local.
 */
function iptablesPolicy(natRules: string, svc: string, nodePort: number): Policy | undefined {
  const lines = natRules.split('\n');
  const jumps = lines.filter((l) => l.startsWith('-A KUBE-NODEPORTS ') && l.includes(`--dport ${nodePort} `));
  if (jumps.some((l) => / -j KUBE-XLB-/.test(l))) return 'Local';
  if (jumps.some((l) => / -j KUBE-SVC-/.test(l))) return 'Cluster';
  const ext = jumps.map((l) => / -j (KUBE-EXT-\S+)/.exec(l)?.[1]).find(Boolean);
  if (!ext) return undefined;
  const rules = lines.filter((l) => l.startsWith(`-A ${ext} `));
  if (rules.some((l) => l.includes(`"masquerade LOCAL traffic for ${svc} external destinations"`))) return 'Local';
  if (rules.some((l) => l.includes(`"masquerade traffic for ${svc} external destinations"`))) return 'Cluster';
  return undefined;
}

/**
 * The same read from the nftables mode's table: the node port's map element leads to the
 * Service's external chain, where Local masquerades only the node's own traffic.
 */
function nftablesPolicy(table: string, svc: string, nodePort: number): Policy | undefined {
  const chain = new RegExp(`tcp \\. ${nodePort} : goto (external-\\S+-${svc.replace('/', '\\/')}\\/tcp\\/)`).exec(table)?.[1];
  if (!chain) return undefined;
  const body = table.slice(table.indexOf(`chain ${chain} {`)).split('\n\t}')[0]!;
  if (body.includes('comment "masquerade local traffic"')) return 'Local';
  if (body.includes('comment "masquerade"')) return 'Cluster';
  return undefined;
}

export async function startLab(mode: ProxyMode = 'iptables'): Promise<Lab> {
  const swept = sweepLeftovers();
  if (swept.length > 0) console.log(`# removed network namespaces left by an earlier run: ${swept.join(', ')}`);
  const dir = await mkdtemp(logDirPrefix());
  const netns = new NetnsSet(dir);
  let control: ClusterWithWebhook | undefined;
  let relay: { close(): Promise<void> } | undefined;

  const stop = async () => {
    await netns.destroy();
    await relay?.close();
    await control?.stop();
    if (process.env.REALIP_E2E_KEEP) console.log(`# datapath logs kept in ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  };
  const logs = async () => {
    const tails = await Promise.all(netns.started.map(async (p) => `--- ${p.name} (${p.log}) ---\n${await tail(p.log, 20)}`));
    if (control) tails.push(`--- webhook ---\n${await control.webhook.logTail(20)}`);
    return tails.join('\n');
  };

  try {
    await buildTopology(netns);
    control = await startClusterWithWebhook(dir);
    const { cluster: c, create } = control;
    await create(node('node1'), node('node2'));

    // Each node namespace reaches the API server at the kubeconfig's own address, 127.0.0.1:<port>
    // inside the namespace, through a unix socket: nothing listens on the host for them but loopback.
    const apiPort = Number(new URL(c.server).port);
    const socketPath = join(dir, 'apiserver.sock');
    relay = await apiRelay(socketPath, apiPort);
    for (const n of NODE_NAMES) {
      netns.start(n, `relay-${n}`, ['socat', `TCP-LISTEN:${apiPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socketPath}`]);
      netns.start(n, `kube-proxy-${n}`, [
        KUBE_PROXY,
        '--kubeconfig', c.kubeconfig,
        '--hostname-override', n,
        '--bind-address', NODE_IPS[n],
        '--proxy-mode', mode,
        '--cluster-cidr', CLUSTER_CIDR,
        // Node ports on the node's own address (from its Node object), nftables' default too.
        ...(atLeast('1.29') ? ['--nodeport-addresses', 'primary'] : []),
        // Zero: leave the kernel's conntrack settings alone (they are not all per namespace).
        '--conntrack-max-per-core', '0',
        '--conntrack-tcp-timeout-established', '0',
        '--conntrack-tcp-timeout-close-wait', '0',
      ]);
    }
    const pod = netns.start('pod', 'pod', [process.execPath, '-e', POD_SERVER]);
    await waitForLine(pod.log, 'listening', 'the pod server to listen', () => !pod.done);

    const httpGet = async (from: string, url: string): Promise<HttpAnswer> => {
      const out = await netns.exec(from, [process.execPath, '-e', HTTP_GET, url, String(PROBE_TIMEOUT_MS)], { timeoutMs: PROBE_TIMEOUT_MS + 10_000 });
      return JSON.parse(out) as HttpAnswer;
    };
    const get = (n: NodeName, port: number) => httpGet('client', `http://${NODE_IPS[n]}:${port}/`);

    const waitUntilMutating = async (ns: string) => {
      await pollUntil(`the webhook to mutate a dry-run NodePort Service in namespace ${ns}`, async () => {
        const { stdout } = await c.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { stdin: manifestStream(service('probe', ns, 'NodePort')) });
        return (JSON.parse(stdout) as Obj).spec.externalTrafficPolicy === 'Local' ? true : undefined;
      });
    };

    const waitProgrammed = async (ns: string, name: string) => {
      const svc = await getJson(c, ['service', name, '-n', ns]);
      const policy = svc.spec.externalTrafficPolicy as string;
      const nodePort = svc.spec.ports[0].nodePort as number;
      for (const n of NODE_NAMES) {
        await pollUntil(`kube-proxy on ${n} to program ${ns}/${name} (node port ${nodePort}) as ${policy} (${mode})`, async () => {
          const programmed = mode === 'nftables'
            ? nftablesPolicy(await netns.exec(n, ['nft', 'list', 'table', 'ip', 'kube-proxy']), `${ns}/${name}`, nodePort)
            : iptablesPolicy(await netns.exec(n, ['iptables-save', '-t', 'nat']), `${ns}/${name}`, nodePort);
          return programmed === policy ? true : undefined;
        }, { timeoutMs: PROGRAMMED_TIMEOUT_MS, intervalMs: 200 });
      }
      const hc = svc.spec.healthCheckNodePort as number | undefined;
      if (hc) {
        // The health check server starts with the same sync; wait until it listens on both nodes.
        for (const n of NODE_NAMES) {
          await pollUntil(`kube-proxy on ${n} to serve health checks on ${hc}`, async () => {
            const answer = await get(n, hc);
            return 'status' in answer ? true : undefined;
          }, { timeoutMs: PROGRAMMED_TIMEOUT_MS, intervalMs: 200 });
        }
      }
      return svc;
    };

    const cli = (command: 'audit' | 'explain', args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const env = { PATH: process.env['PATH'], HOME: dir };
        execFile(process.execPath, [join(ROOT, 'dist', 'cli.js'), command, ...args, '--kubeconfig', c.kubeconfig], { cwd: ROOT, env, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') return reject(err);
          resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
        });
      });

    // kube-proxy is up once it answers its own health check inside each node namespace.
    for (const n of NODE_NAMES) {
      const proxy = netns.started.find((p) => p.name === `kube-proxy-${n}`)!;
      await pollUntil(`kube-proxy on ${n} to report healthy`, async () => {
        if (proxy.done) throw new Error(`kube-proxy on ${n} exited:\n${await tail(proxy.log)}`);
        const answer = await httpGet(n, 'http://127.0.0.1:10256/healthz');
        return 'status' in answer && answer.status === 200 ? true : undefined;
      }, { timeoutMs: PROGRAMMED_TIMEOUT_MS, intervalMs: 250 });
    }

    return { cluster: c, webhook: control.webhook, dir, create, waitUntilMutating, waitProgrammed, get, cli, logs, stop };
  } catch (err) {
    const tails = await logs();
    await stop();
    throw new Error(`datapath lab did not start: ${(err as Error).message}\n${tails}`, { cause: err });
  }
}
