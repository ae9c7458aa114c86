// (b) HTTPS throughput and latency of the webhook against a bare Fastify HTTPS server doing the
// floor work (parse the same body, answer a review of the same size), each in its own process.
import autocannon from 'autocannon';
import { startChild } from './child.js';
import { REPO, type BenchFiles } from './workload.js';

export type ServerKind = 'webhook' | 'bare';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  /** Answers that were not 2xx, plus errors and timeouts: any is a finding. */
  failures: number;
}

export async function startServer(kind: ServerKind, files: BenchFiles) {
  const child = startChild(['--import', 'tsx', 'test/bench/servers.ts', kind, files.cert, files.key, files.namespaces], { cwd: REPO });
  const { port } = (await child.firstLine) as { port: number };
  return { port, stop: child.stop };
}

/** The value below which `share` of the sorted samples fall. */
function percentile(sorted: number[], share: number): number {
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
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    failures: result.non2xx + result.errors + result.timeouts,
  };
}
