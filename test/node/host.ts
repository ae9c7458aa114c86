// What test:node changes on the host, and how it is put back. The nodes share the host's network
// namespace (the API server must be reachable from Pods on an address that is not loopback), so
// everything a run creates carries its process id: the run directory
// (/tmp/realip-node-<pid>-*), the bridges (rip<pid>n<i>), the addresses' label on lo (lo:r<pid>)
// and the cgroup roots (/realip-node-<pid>-*). A run sweeps what a killed earlier run left behind
// before it starts, from the state that run recorded in its directory.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../support/pids.js';

const RUN_PREFIX = 'realip-node-';
const CGROUP_FS = '/sys/fs/cgroup';

/**
 * Sysctls the kubelet (setupKernelTunables), the bridge plugin (ip_forward) and kube-proxy may
 * write, host-wide: read before the run, written back after it.
 */
export const TOUCHED_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/ipv6/conf/all/forwarding',
];

export type Sysctls = Record<string, string>;

export function readSysctls(): Sysctls {
  const out: Sysctls = {};
  for (const key of TOUCHED_SYSCTLS) {
    const file = `/proc/sys/${key}`;
    if (existsSync(file)) out[key] = readFileSync(file, 'utf8').trim();
  }
  return out;
}

export function writeSysctls(values: Sysctls): void {
  for (const [key, value] of Object.entries(values)) {
    const file = `/proc/sys/${key}`;
    if (readFileSync(file, 'utf8').trim() !== value) writeFileSync(file, `${value}\n`);
  }
}

/** What one run created, written to its directory as it goes so that a later run can undo it. */
export interface RunState {
  pid: number;
  dir: string;
  sysctls: Sysctls;
  bridges: string[];
  /** Addresses as `ip addr` takes them (198.51.100.1/32). */
  addresses: string[];
  /** Cgroup paths relative to each hierarchy's root. */
  cgroups: string[];
  /** The control plane's directory (test/e2e/cluster.ts makes it): etcd, the API server and the components name it. */
  clusterDir?: string;
  /** Whether kube-proxy ran, so its rules must be cleaned up. */
  kubeProxy: boolean;
  /** Host directories the run's processes write whatever they are told, that did not exist before it. */
  madeDirs: string[];
  /** The host's nftables tables before the run (iptables-nft makes its tables on first use). */
  nftTables: string[];
}

/**
 * Where the nodes write on the host whatever their configuration: the shims' sockets
 * (/run/containerd/s), the kubelet's container log links and device plugin socket, libcni's cache.
 */
const HOST_DIRS = ['/run/containerd', '/var/log/containers', '/var/log/pods', '/var/lib/kubelet', '/var/lib/cni'];

export const missingHostDirs = () => HOST_DIRS.filter((d) => !existsSync(d));

export function nftTables(): string[] {
  return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').map((l) => l.trim()).filter(Boolean);
}

/** The kubelet links each container's log here, whatever its root directory. */
const CONTAINER_LOG_LINKS = '/var/log/containers';

/** Links in /var/log/containers into `dir`. */
function logLinksInto(dir: string): string[] {
  if (!existsSync(CONTAINER_LOG_LINKS)) return [];
  return readdirSync(CONTAINER_LOG_LINKS)
    .map((n) => join(CONTAINER_LOG_LINKS, n))
    .filter((l) => {
      try {
        return readlinkSync(l).startsWith(dir);
      } catch {
        return false;
      }
    });
}


export const bridgeName = (pid: number, node: number) => `rip${pid}n${node}`;
export const addressLabel = (pid: number) => `lo:r${pid}`;
export const cgroupRoot = (pid: number, node: string) => `/${RUN_PREFIX}${pid}-${node}`;
export const runDirPrefix = () => join(tmpdir(), `${RUN_PREFIX}${process.pid}-`);

export function saveState(state: RunState): void {
  writeFileSync(join(state.dir, 'state.json'), JSON.stringify(state));
}

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const quiet = (fn: () => unknown) => {
  try {
    fn();
  } catch {
    // Already gone.
  }
};

/** Hierarchies of the host's cgroup v1 mounts (and the unified one, where there is one). */
function cgroupHierarchies(): string[] {
  if (!existsSync(CGROUP_FS)) return [];
  if (existsSync(join(CGROUP_FS, 'cgroup.controllers'))) return [CGROUP_FS];
  return readdirSync(CGROUP_FS)
    .map((d) => join(CGROUP_FS, d))
    .filter((d) => {
      try {
        return !statSync(d).isSymbolicLink() && existsSync(join(d, 'cgroup.procs'));
      } catch {
        return false;
      }
    });
}

/** Every directory under `dir`, deepest first. */
function subdirsDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...subdirsDeepestFirst(join(dir, e.name)), join(dir, e.name));
  }
  return out;
}

/** Creates the cgroup in every hierarchy; cpuset's needs its parent's cpus and mems to take tasks. */
export function createCgroup(path: string): void {
  for (const h of cgroupHierarchies()) {
    const d = join(h, path);
    execFileSync('mkdir', ['-p', d]);
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(d, f)) && readFileSync(join(d, f), 'utf8').trim() === '') {
        writeFileSync(join(d, f), readFileSync(join(h, f), 'utf8'));
      }
    }
  }
}

/** Processes in the cgroup (any hierarchy, any depth). */
function cgroupPids(path: string): number[] {
  const pids = new Set<number>();
  for (const h of cgroupHierarchies()) {
    const d = join(h, path);
    if (!existsSync(d)) continue;
    for (const sub of [d, ...subdirsDeepestFirst(d)]) {
      for (const l of readFileSync(join(sub, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.add(Number(l));
    }
  }
  return [...pids];
}

/** Removes the cgroup and everything below it, once empty. */
function removeCgroup(path: string): void {
  for (const h of cgroupHierarchies()) {
    const d = join(h, path);
    if (!existsSync(d)) continue;
    for (const sub of [...subdirsDeepestFirst(d), d]) quiet(() => rmdirSync(sub));
  }
}

/** Processes whose command line names `dir` (containerd, its shims, the kubelet). */
function processesNaming(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) out.push(Number(p));
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

/** Mount points under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

function killAll(pids: number[]): void {
  for (const pid of pids) quiet(() => process.kill(pid, 'SIGKILL'));
}

/** Chains of kube-proxy (KUBE-*) in the host's iptables and ip6tables, and its nftables tables. */
export function kubeProxyRules(): string[] {
  const found: string[] = [];
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const out = execFileSync(save, { encoding: 'utf8' });
    for (const l of out.split('\n')) if (/^:KUBE-/.test(l)) found.push(`${save}: ${l.split(' ')[0]}`);
  }
  const nft = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  for (const l of nft.split('\n')) if (/ kube-proxy$/.test(l.trim())) found.push(`nft: ${l.trim()}`);
  return found;
}

/**
 * Undoes what a run recorded, in order: processes (by the run directory in their command line and
 * by the cgroups), mounts under the directory, cgroups, bridges (their veths go with the pods'
 * namespaces), addresses, kube-proxy's rules (`kube-proxy --cleanup`), sysctls, the directory.
 */
export function undoRun(state: RunState, kubeProxyBin: string): void {
  for (let i = 0; i < 3; i++) {
    const dirs = [state.dir, ...(state.clusterDir ? [state.clusterDir] : [])];
    const pids = [...dirs.flatMap(processesNaming), ...state.cgroups.flatMap(cgroupPids)];
    if (pids.length === 0) break;
    killAll(pids);
    execFileSync('sleep', ['0.3']);
  }
  for (const m of mountsUnder(state.dir)) quiet(() => execFileSync('umount', ['-l', m], { stdio: 'ignore' }));
  for (const l of logLinksInto(state.dir)) rmSync(l, { force: true });
  for (const d of state.madeDirs) rmSync(d, { recursive: true, force: true });
  for (const c of state.cgroups) removeCgroup(c);
  for (const b of state.bridges) quiet(() => ip('link', 'del', b));
  for (const a of state.addresses) quiet(() => ip('addr', 'del', a, 'dev', 'lo'));
  if (state.kubeProxy && kubeProxyRules().length > 0) {
    quiet(() => execFileSync(kubeProxyBin, ['--cleanup'], { stdio: 'ignore' }));
    // --cleanup leaves the iptables KUBE-* chains of the kubelet (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY).
    removeKubeChains();
  }
  // Tables iptables-nft made for kube-proxy and the kubelet, empty now.
  for (const t of nftTables()) if (!state.nftTables.includes(t)) quiet(() => execFileSync('nft', ['delete', ...t.split(' ')], { stdio: 'ignore' }));
  writeSysctls(state.sysctls);
  if (state.clusterDir) rmSync(state.clusterDir, { recursive: true, force: true });
  rmSync(state.dir, { recursive: true, force: true });
}

/** Deletes every KUBE-* chain (and the jumps to it) from the host's iptables and ip6tables. */
function removeKubeChains(): void {
  for (const [save, cmd] of [['iptables-save', 'iptables'], ['ip6tables-save', 'ip6tables']] as const) {
    const out = execFileSync(save, { encoding: 'utf8' });
    let table = '';
    const jumps: [string, string][] = [];
    const chains: [string, string][] = [];
    for (const l of out.split('\n')) {
      if (l.startsWith('*')) table = l.slice(1);
      else if (/^:KUBE-/.test(l)) chains.push([table, l.slice(1).split(' ')[0]!]);
      else if (/^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-/.test(l)) jumps.push([table, l.slice(3)]);
    }
    for (const [t, rule] of jumps) quiet(() => execFileSync('sh', ['-c', `${cmd} -t ${t} -D ${rule}`], { stdio: 'ignore' }));
    for (const [t, c] of chains) quiet(() => execFileSync(cmd, ['-t', t, '-F', c], { stdio: 'ignore' }));
    for (const [t, c] of chains) quiet(() => execFileSync(cmd, ['-t', t, '-X', c], { stdio: 'ignore' }));
  }
}

/** Undoes the runs whose process has died; returns their directories. */
export function sweepLeftovers(kubeProxyBin: string): string[] {
  const swept: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(RUN_PREFIX)) continue;
    const owner = Number(name.slice(RUN_PREFIX.length).split('-')[0]);
    if (Number.isInteger(owner) && pidAlive(owner)) continue;
    const dir = join(tmpdir(), name);
    let state: RunState;
    try {
      state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as RunState;
    } catch {
      state = { pid: owner, dir, sysctls: {}, bridges: [], addresses: [], cgroups: [], kubeProxy: false, madeDirs: [], nftTables: nftTables() };
    }
    undoRun(state, kubeProxyBin);
    swept.push(dir);
  }
  return swept;
}

/** What is left on the host of this run: empty when the clean-up was complete. */
export function leftovers(state: RunState, before: { sysctls: Sysctls; rules: string[] }): string[] {
  const left: string[] = [];
  if (existsSync(state.dir)) left.push(`directory ${state.dir}`);
  for (const m of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4])) {
    if (m?.startsWith(state.dir)) left.push(`mount ${m}`);
  }
  for (const d of [state.dir, ...(state.clusterDir ? [state.clusterDir] : [])]) {
    left.push(...processesNaming(d).map((p) => `process ${p}: ${safeCmdline(p)}`));
  }
  left.push(...logLinksInto(state.dir).map((l) => `log link ${l}`));
  for (const d of state.madeDirs) if (existsSync(d)) left.push(`directory ${d}`);
  for (const t of nftTables()) if (!state.nftTables.includes(t)) left.push(`nftables ${t}`);
  for (const c of state.cgroups) for (const h of cgroupHierarchies()) if (existsSync(join(h, c))) left.push(`cgroup ${join(h, c)}`);
  const links = ip('-o', 'link', 'show');
  for (const b of state.bridges) if (links.includes(` ${b}:`)) left.push(`link ${b}`);
  const loAddrs = ip('-o', 'addr', 'show', 'dev', 'lo');
  for (const a of state.addresses) if (loAddrs.includes(` ${a} `)) left.push(`address ${a} on lo`);
  for (const r of kubeProxyRules()) if (!before.rules.includes(r)) left.push(`rule ${r}`);
  const now = readSysctls();
  for (const [k, v] of Object.entries(before.sysctls)) if (now[k] !== v) left.push(`sysctl ${k} = ${now[k]} (was ${v})`);
  return left;
}

function safeCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 120);
  } catch {
    return '(gone)';
  }
}
