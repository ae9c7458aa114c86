// A Kubernetes 1.37 cluster whose Pods run: the e2e suite's API server (test/e2e/cluster.ts, bound
// to a TEST-NET address on lo so Pods reach it through the kubernetes Service),
// kube-controller-manager, kube-scheduler, one kube-proxy, and nodes of a kubelet and a containerd
// each, all in the host's network namespace. Each node's Pods sit on a bridge of its own with a
// /25 of 203.0.113.0/24; the host routes between them. Built by test/node/install-node.sh.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isExecutable, startCluster, startProcess, stopProcess, tail, type Cluster, type Proc } from '../e2e/cluster.js';
import { getJson, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import { kubernetesRelease } from '../kubernetes/release.js';
import { findExecutable } from '../support/executables.js';
import { freePorts } from '../support/net.js';
import {
  addressLabel,
  bridgeName,
  cgroupRoot,
  createCgroup,
  kubeProxyRules,
  leftovers,
  missingHostDirs,
  nftTables,
  readSysctls,
  runDirPrefix,
  saveState,
  sweepLeftovers,
  undoRun,
  type RunState,
} from './host.js';

const run = promisify(execFile);

/** The nodes run the release whose kubelet install-node.sh builds. */
export const RELEASE = kubernetesRelease('1.37');
export const NODE_BIN_DIR = `/var/cache/realip-webhook/node-${RELEASE.version}`;
const KUBE_PROXY = `${RELEASE.binDir}/kube-proxy`;
const INSTALL_HINT = 'run test/kubernetes/install-1.37.sh and test/node/install-node.sh (as root) first';
const API_ADDRESS = '198.51.100.1';
const CLUSTER_CIDR = '203.0.113.0/24';
const SERVICE_CIDR = '10.0.0.0/16';
const PAUSE_IMAGE = 'localhost/realip-pause:1';
const NODE_READY_TIMEOUT_MS = 90_000;

interface NodeSpec {
  name: string;
  ip: string;
  podCidr: string;
  gateway: string;
}

const NODE_SPECS: NodeSpec[] = [
  { name: 'node1', ip: '198.51.100.11', podCidr: '203.0.113.0/25', gateway: '203.0.113.1' },
  { name: 'node2', ip: '198.51.100.12', podCidr: '203.0.113.128/25', gateway: '203.0.113.129' },
];

export interface Node {
  name: string;
  ip: string;
  /** `ctr` against this node's containerd, in the k8s.io namespace the kubelet uses. */
  ctr(args: string[]): Promise<string>;
  /** The host pid of a container, from its Pod's containerID. */
  containerPid(containerId: string): Promise<number>;
}

export interface NodeCluster {
  cluster: Cluster;
  nodes: Node[];
  dir: string;
  /** Imports an image archive (docker-archive or OCI) into every node's containerd. */
  importImage(archive: string): Promise<void>;
  /** Log tails of every process, for a failure message. */
  logs(): Promise<string>;
  /** Stops everything and undoes every change to the host; returns what is left (should be nothing). */
  stop(): Promise<string[]>;
}

/** What test:node cannot run without, each with the command that provides it. */
export async function missingNodePrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  if (process.platform !== 'linux') return [`the nodes need Linux, this is ${process.platform}`];
  if (process.getuid?.() !== 0) return ['the nodes need root (CI runs .ci/run as root)'];
  const bins = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'kubectl', 'etcd'].map((b) => `${RELEASE.binDir}/${b}`);
  bins.push(...['kubelet', 'containerd', 'containerd-shim-runc-v2', 'ctr', 'bridge', 'host-local', 'loopback'].map((b) => `${NODE_BIN_DIR}/${b}`));
  for (const b of bins) if (!(await isExecutable(b))) missing.push(`${b} not found: ${INSTALL_HINT}`);
  for (const tool of ['runc', 'iptables', 'ip6tables', 'nft', 'ip']) {
    if (!findExecutable(tool, [`/usr/sbin/${tool}`, `/sbin/${tool}`])) missing.push(`${tool} not found in PATH: ${INSTALL_HINT}`);
  }
  return missing;
}

function containerdConfig(dir: string): string {
  return `version = 3
root = '${dir}/root'
state = '${dir}/state'
temp = '${dir}/tmp'
# NRI's socket and tracing are host-wide: two containerds would share them.
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']

[grpc]
  address = '${dir}/containerd.sock'
[ttrpc]
  address = '${dir}/containerd.sock.ttrpc'

[plugins.'io.containerd.internal.v1.opt']
  path = '${dir}/opt'
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '${PAUSE_IMAGE}'
[plugins.'io.containerd.cri.v1.runtime']
  # This VM has no CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  # cgroup v1 (hybrid) with the cgroupfs driver, as the kubelet.
  SystemdCgroup = false
  Root = '${dir}/runc'
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ['${NODE_BIN_DIR}']
  conf_dir = '${dir}/cni'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
`;
}

function cniConfig(spec: NodeSpec, bridge: string, dir: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: `realip-${spec.name}`,
    plugins: [{
      type: 'bridge',
      bridge,
      isGateway: true,
      // No masquerade: Pods reach the API server and each other with their own addresses, and no
      // NAT rule is left in the host's tables.
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: spec.podCidr, gateway: spec.gateway }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: join(dir, 'ipam'),
      },
    }],
  });
}

function kubeletConfig(spec: NodeSpec, dir: string, cgroup: string, port: number, healthzPort: number): string {
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This host's cgroups are v1 (hybrid), which 1.35+ refuses unless told.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: cgroup,
    containerRuntimeEndpoint: `unix://${dir}/containerd/containerd.sock`,
    address: spec.ip,
    port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    podCIDR: spec.podCidr,
    podLogsDir: join(dir, 'pods'),
    failSwapOn: false,
    // The shared disk must not put the node under pressure.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Secret volumes (the webhook's certificate) are synced this often.
    syncFrequency: '10s',
    resolvConf: '/etc/resolv.conf',
    serializeImagePulls: false,
  });
}

export async function startNodeCluster(nodeCount = 2): Promise<NodeCluster> {
  const swept = sweepLeftovers(KUBE_PROXY);
  if (swept.length > 0) console.log(`# removed what earlier runs left behind: ${swept.join(', ')}`);
  const before = { sysctls: readSysctls(), rules: kubeProxyRules() };
  const dir = await mkdtemp(runDirPrefix());
  const specs = NODE_SPECS.slice(0, nodeCount);
  const state: RunState = {
    pid: process.pid,
    dir,
    sysctls: before.sysctls,
    bridges: [],
    addresses: [],
    cgroups: specs.map((s) => cgroupRoot(process.pid, s.name)),
    kubeProxy: false,
    madeDirs: missingHostDirs(),
    nftTables: nftTables(),
  };
  saveState(state);
  const procs: Proc[] = [];
  const env = { ...process.env, PATH: `${NODE_BIN_DIR}:${process.env.PATH}` };
  let cluster: Cluster | undefined;

  const logs = async () => (await Promise.all(procs.map(async (p) => `--- ${p.name} (${p.log}) ---\n${await tail(p.log, 25)}`))).join('\n');
  const stop = async () => {
    for (const p of [...procs].reverse()) await stopProcess(p);
    await cluster?.stop();
    undoRun(state, KUBE_PROXY);
    return leftovers(state, before);
  };

  try {
    // The API server's and the nodes' addresses, labelled with this run's pid.
    for (const a of [API_ADDRESS, ...specs.map((s) => s.ip)]) {
      await run('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo', 'label', addressLabel(process.pid)]);
      state.addresses.push(`${a}/32`);
      saveState(state);
    }
    // The bridges exist before the plugin runs, so the Service range can be routed to one of them:
    // a packet to a ClusterIP that kube-proxy did not rewrite goes nowhere instead of off the host.
    for (const [i, s] of specs.entries()) {
      const b = bridgeName(process.pid, i + 1);
      await run('ip', ['link', 'add', b, 'type', 'bridge']);
      state.bridges.push(b);
      saveState(state);
      await run('ip', ['addr', 'add', `${s.gateway}/25`, 'dev', b]);
      await run('ip', ['link', 'set', b, 'up']);
    }
    await run('ip', ['route', 'add', SERVICE_CIDR, 'dev', state.bridges[0]!, 'src', API_ADDRESS]);

    cluster = await startCluster({ release: RELEASE, podAddress: API_ADDRESS });
    const c = cluster;
    state.clusterDir = c.dir;
    saveState(state);
    const [kcmPort, schedPort, proxyHealthz, proxyMetrics, ...nodePorts] = await freePorts(4 + 2 * specs.length);
    procs.push(startProcess('kube-controller-manager', `${RELEASE.binDir}/kube-controller-manager`, dir, [
      '--kubeconfig', c.kubeconfig,
      '--bind-address', '127.0.0.1',
      '--secure-port', String(kcmPort),
      '--leader-elect=false',
      // kube-root-ca.crt in every namespace: the CA Pods trust the API server with.
      '--root-ca-file', c.caFile,
      '--service-account-private-key-file', c.serviceAccountKeyFile,
      '--service-cluster-ip-range', SERVICE_CIDR,
      '--allocate-node-cidrs=false',
    ]));
    procs.push(startProcess('kube-scheduler', `${RELEASE.binDir}/kube-scheduler`, dir, [
      '--kubeconfig', c.kubeconfig,
      '--bind-address', '127.0.0.1',
      '--secure-port', String(schedPort),
      '--leader-elect=false',
    ]));
    // One kube-proxy: the nodes share the host's tables. Flags, not --config: kube-proxy exits
    // when its config file is rewritten under it.
    state.kubeProxy = true;
    saveState(state);
    procs.push(startProcess('kube-proxy', KUBE_PROXY, dir, [
      '--kubeconfig', c.kubeconfig,
      '--hostname-override', specs[0]!.name,
      '--proxy-mode', 'iptables',
      '--cluster-cidr', CLUSTER_CIDR,
      '--healthz-bind-address', `127.0.0.1:${proxyHealthz}`,
      '--metrics-bind-address', `127.0.0.1:${proxyMetrics}`,
      '--nodeport-addresses', 'primary',
      // Zero: leave the kernel's conntrack settings alone.
      '--conntrack-max-per-core', '0',
      '--conntrack-tcp-timeout-established', '0',
      '--conntrack-tcp-timeout-close-wait', '0',
    ]));

    const nodes: Node[] = [];
    const sockets: string[] = [];
    for (const [i, s] of specs.entries()) {
      const nodeDir = join(dir, s.name);
      const cdDir = join(nodeDir, 'containerd');
      await mkdir(join(cdDir, 'cni'), { recursive: true });
      await writeFile(join(cdDir, 'config.toml'), containerdConfig(cdDir));
      await writeFile(join(cdDir, 'cni', '10-bridge.conflist'), cniConfig(s, state.bridges[i]!, cdDir));
      const socket = join(cdDir, 'containerd.sock');
      sockets.push(socket);
      procs.push(startProcess(`containerd-${s.name}`, `${NODE_BIN_DIR}/containerd`, dir, ['--config', join(cdDir, 'config.toml')], { env }));
      const ctr = async (args: string[]) => (await run(`${NODE_BIN_DIR}/ctr`, ['--address', socket, '--namespace', 'k8s.io', ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
      nodes.push({
        name: s.name,
        ip: s.ip,
        ctr,
        containerPid: async (containerId: string) => {
          const id = containerId.replace(/^containerd:\/\//, '');
          const out = await ctr(['tasks', 'ls']);
          const line = out.split('\n').find((l) => l.startsWith(`${id} `));
          if (!line) throw new Error(`no task ${id} on ${s.name}:\n${out}`);
          return Number(line.trim().split(/\s+/)[1]);
        },
      });
    }
    for (const [i, n] of nodes.entries()) {
      await pollUntil(`containerd on ${n.name}`, async () => {
        const p = procs.find((x) => x.name === `containerd-${n.name}`)!;
        if (p.done) throw new Error(`containerd on ${n.name} exited:\n${await tail(p.log)}`);
        return (await n.ctr(['version']).then(() => true, () => undefined));
      }, { timeoutMs: 30_000, intervalMs: 200 });
      await n.ctr(['images', 'import', join(NODE_BIN_DIR, 'pause.tar')]);
      const s = specs[i]!;
      const nodeDir = join(dir, s.name);
      createCgroup(state.cgroups[i]!);
      await writeFile(join(nodeDir, 'kubelet.json'), kubeletConfig(s, nodeDir, state.cgroups[i]!, nodePorts[2 * i]!, nodePorts[2 * i + 1]!));
      procs.push(startProcess(`kubelet-${s.name}`, `${NODE_BIN_DIR}/kubelet`, dir, [
        '--config', join(nodeDir, 'kubelet.json'),
        '--kubeconfig', c.kubeconfig,
        '--root-dir', join(nodeDir, 'kubelet'),
        '--cert-dir', join(nodeDir, 'kubelet', 'pki'),
        '--hostname-override', s.name,
        '--node-ip', s.ip,
      ], { env }));
    }

    for (const n of nodes) {
      await pollUntil(`node ${n.name} to be Ready without the not-ready taint`, async () => {
        const dead = procs.find((p) => p.done);
        if (dead) throw new Error(`${dead.name} exited:\n${await tail(dead.log)}`);
        const node = await getJson(c, ['node', n.name]).catch(() => undefined);
        const ready = node?.status?.conditions?.find((x: Obj) => x.type === 'Ready')?.status === 'True';
        const tainted = (node?.spec?.taints ?? []).some((t: Obj) => t.key.startsWith('node.kubernetes.io/'));
        return ready && !tainted ? true : undefined;
      }, { timeoutMs: NODE_READY_TIMEOUT_MS, intervalMs: 500 });
    }

    const importImage = async (archive: string) => {
      for (const n of nodes) await n.ctr(['images', 'import', archive]);
    };
    return { cluster: c, nodes, dir, importImage, logs, stop };
  } catch (err) {
    const tails = await logs();
    const left = await stop();
    throw new Error(`the node cluster did not start: ${(err as Error).message}\n${tails}${left.length ? `\nleft behind: ${left.join(', ')}` : ''}`, { cause: err });
  }
}
