// (c) and (d): the real `node dist/cli.js serve` against an API server, measured from outside as
// an operator would: milliseconds from spawn to the first 200 on /readyz, and the resident memory
// of the whole process (from /proc) a while after that, once the cache is full.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from '../support/net.js';
import { cpuTime, startChild } from './child.js';
import { REPO, type BenchFiles } from './workload.js';

const POLL_MS = 5;
const GIVE_UP_MS = 60_000;
/** RSS is read this long after ready, as the outside measurement did: start-up garbage has been collected by then. */
export const RSS_SETTLE_MS = 3_000;

/** Node 20 (the image's) and Node 24 (CI's): each that is installed here, by its version. */
const NODE_CANDIDATES = [process.execPath, '/usr/bin/node', '/var/cache/realip-webhook/node-24.21.0/node_modules/.bin/node'];

/**
 * The node flags of the image's ENTRYPOINT (["node", FLAGS..., "dist/cli.js", ...]), so (c) and
 * (d) run serve as the image does. BENCH_NODE_FLAGS, when set, replaces them (to try a flag).
 */
export function imageNodeFlags(): { flags: string[]; from: string } {
  const override = process.env.BENCH_NODE_FLAGS;
  if (override !== undefined) return { flags: override.split(' ').filter(Boolean), from: 'BENCH_NODE_FLAGS' };
  const line = readFileSync(join(REPO, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT'));
  const command = line ? (JSON.parse(line.slice('ENTRYPOINT'.length)) as string[]) : [];
  const script = command.indexOf('dist/cli.js');
  if (command[0] !== 'node' || script < 0) throw new Error(`Dockerfile ENTRYPOINT is not ["node", ..., "dist/cli.js", ...]: ${line}`);
  return { flags: command.slice(1, script), from: 'the Dockerfile ENTRYPOINT' };
}

export interface NodeBinary {
  version: string;
  path: string;
}

/** Installed Node binaries, one per major version, oldest first. */
export function nodeBinaries(): NodeBinary[] {
  const byMajor = new Map<string, NodeBinary>();
  for (const path of NODE_CANDIDATES) {
    if (!existsSync(path)) continue;
    const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
    const major = version.split('.')[0]!;
    if (!byMajor.has(major)) byMajor.set(major, { version, path });
  }
  return [...byMajor.values()].sort((a, b) => Number(a.version.slice(1).split('.')[0]) - Number(b.version.slice(1).split('.')[0]));
}

function get(url: string, ca: Buffer, agent?: https.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { ca, agent: agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

export function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

/** Starts `serve` against `kubeconfig` at the default log level (on `cpu` only, if given); `node` defaults to the bench's own. */
export async function startServe(files: BenchFiles, kubeconfig: string, node?: NodeBinary, nodeFlags: string[] = [], cpu?: number) {
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  const ca = readFileSync(files.ca);
  const spawnedAt = performance.now();
  const child = startChild(
    [
      ...nodeFlags, 'dist/cli.js', 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-port', String(metricsPort),
      '--tls-cert', files.cert, '--tls-key', files.key, '--kubeconfig', kubeconfig,
    ],
    { cwd: REPO, node: node?.path, cpu },
  );
  return {
    port,
    child,
    metrics: async () => (await get(`http://127.0.0.1:${metricsPort}/metrics`, ca)).body,
    /** Resolves once /readyz answers 200, with the milliseconds since the spawn. */
    ready: async () => {
      // One kept-alive connection: a TLS handshake per poll would add to the CPU time measured.
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while ((await get(`https://127.0.0.1:${port}/readyz`, ca, agent)).status !== 200) {
          if (child.process.exitCode !== null) throw new Error(`serve exited with ${child.process.exitCode}: ${child.stderr()}`);
          if (performance.now() - spawnedAt > GIVE_UP_MS) throw new Error(`serve not ready after ${GIVE_UP_MS} ms`);
          await sleep(POLL_MS);
        }
      } finally {
        agent.destroy();
      }
      return performance.now() - spawnedAt;
    },
  };
}

/** CPU time (user + system) the process has used so far, in ms: start-up cost that a busy machine cannot inflate much. */
function cpuMs(pid: number): number {
  const { user, system } = cpuTime(pid);
  return (user + system) / 1000;
}

export interface ServeMeasurement {
  readyMs: number;
  /** CPU time used by the process until ready. */
  readyCpuMs: number;
  rss: number;
}

/**
 * Starts serve on `node` against `kubeconfig`, waits for /readyz, checks that the cache holds
 * at least `namespaces` namespaces (the metric), and reads RSS_SETTLE_MS later.
 */
export async function measureServe(node: NodeBinary, files: BenchFiles, kubeconfig: string, namespaces: number, nodeFlags: string[] = []): Promise<ServeMeasurement> {
  const serve = await startServe(files, kubeconfig, node, nodeFlags);
  try {
    const readyMs = await serve.ready();
    const readyCpuMs = cpuMs(serve.child.process.pid!);
    const size = Number(/^realip_webhook_namespace_cache_size (\d+)/m.exec(await serve.metrics())?.[1]);
    if (!(size >= namespaces)) throw new Error(`ready with ${size} namespaces cached, expected at least ${namespaces}`);
    await sleep(RSS_SETTLE_MS);
    return { readyMs, readyCpuMs, rss: rssBytes(serve.child.process.pid!) };
  } finally {
    await serve.child.stop();
  }
}

/** Milliseconds from spawn to exit of `node -e 0`: the part of start-up that is Node's own. */
export async function nodeStartup(node: NodeBinary): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(node.path, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  return performance.now() - started;
}
