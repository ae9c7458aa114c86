// (b) HTTPS throughput and latency of the webhook against a bare Fastify HTTPS server doing the
// floor work (parse the same body, answer a review of the same size), each in its own process.
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { cpuTime, startChild } from './child.js';
import { REPO, type BenchFiles } from './workload.js';

export type ServerKind = 'webhook' | 'webhook-info' | 'bare' | 'floor';

export interface LoadResult {
  rps: number;
  /** Requests answered in the run. */
  requests: number;
  p50: number;
  p99: number;
  /** Answers that were not 2xx, plus errors and timeouts: any is a finding. */
  failures: number;
}

/** The CPUs of (b): servers on one, this process (autocannon) on another. */
export interface Pinning {
  server: number;
  loadGenerator: number;
}

/**
 * Pins this process (all its threads) to the load generator's CPU and returns the pinning, or
 * says why it cannot: then both share the CPUs and the ratios carry the load generator's noise.
 */
export function pinLoadGenerator(): Pinning | string {
  if (availableParallelism() < 2) return 'one CPU only: server and load generator share it';
  const pinning = { server: 0, loadGenerator: 1 };
  try {
    execFileSync('taskset', ['-a', '-cp', String(pinning.loadGenerator), String(process.pid)], { stdio: 'ignore' });
  } catch (err) {
    return `taskset failed (${(err as Error).message.split('\n')[0]}): server and load generator share the CPUs`;
  }
  return pinning;
}

/** Lets this process (and so the processes it starts next) run on every CPU again: the API server rows need them. */
export function unpin(): void {
  // cpus(), not availableParallelism(): the latter counts only the CPUs this process is pinned to.
  execFileSync('taskset', ['-a', '-cp', `0-${cpus().length - 1}`, String(process.pid)], { stdio: 'ignore' });
}

export async function startServer(kind: ServerKind, files: BenchFiles, cpu?: number, nodeFlags: string[] = []) {
  const logFile = join(files.dir, `${kind}.log`);
  const child = startChild([...nodeFlags, '--import', 'tsx', 'test/bench/servers.ts', kind, files.cert, files.key, files.namespaces, logFile], { cwd: REPO, cpu });
  const { port } = (await child.lineWith('port')) as { port: number };
  const pid = child.process.pid!;
  return { port, stop: child.stop, cpuTime: () => cpuTime(pid) };
}

/** The value below which `share` of the sorted samples fall. */
export function percentile(sorted: number[], share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))] ?? Number.NaN;
}

export async function load(port: number, body: string, connections: number, seconds: number): Promise<LoadResult> {
  // autocannon's own percentiles are whole milliseconds, and these answers take less than one.
  const latencies: number[] = [];
  const options = {
    url: `https://127.0.0.1:${port}/mutate`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon(options, (err: unknown, done: autocannon.Result) => (err ? reject(err) : resolve(done)));
    run.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => latencies.push(ms));
  });
  latencies.sort((a, b) => a - b);
  return {
    rps: result.requests.average,
    requests: result.requests.total,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    failures: result.non2xx + result.errors + result.timeouts,
  };
}
