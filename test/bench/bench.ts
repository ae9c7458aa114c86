// npm run bench: what the webhook costs over the floor any JSON-over-HTTPS webhook pays. Every
// figure is a ratio against a baseline measured in the same run, over ROUNDS rounds, reported as
// the median. A benchmark, not a test: it prints a table and exits 0 whatever the numbers.
// (g) sets the engines side by side: the webhook, the admission policies and Kyverno
// (docs/engines.md has the figures).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { isExecutable, startCluster, type Cluster } from '../e2e/cluster.js';
import { atLeast, kubernetesRelease, release, SUPPORTED_MINORS } from '../kubernetes/release.js';
import { startBenchApiServer, type BenchApiServer } from './api-server.js';
import { apiServerLatency, CLIENT_COUNTS, type LatencyBatch } from './apiserver-latency.js';
import { engineFigures, ENGINES, LONG_BATCH_CREATES, LONG_BATCH_IN_FLIGHT, type EngineCase } from './engines.js';
import { installKyverno, KYVERNO_VERSION } from './kyverno.js';
import type { CpuTime } from './child.js';
import { load, pinLoadGenerator, startServer, unpin, type LoadResult } from './http-load.js';
import { inProcessRound, reviewHandler } from './in-process.js';
import { loadProduct } from './product.js';
import { sessionCost } from './session.js';
import { imageNodeFlags, measureServe, nodeBinaries, nodeStartup, RSS_SETTLE_MS, type NodeBinary } from './serve-process.js';
import { benchFiles, deploymentReviewBody, REPO } from './workload.js';

const ROUNDS = 5;
/** Each round of (c)/(d) waits RSS_SETTLE_MS after ready, so fewer of them. */
const SERVE_ROUNDS = 3;
const LATENCY_BATCHES = 10;
const SESSION_ROUNDS = 10;
const ENGINE_BATCHES = 8;
const LOAD_SECONDS = 3;
const CONNECTIONS = [1, 8, 32] as const;
/** The one load at which (b) also measures the webhook at info. */
const INFO_CONNECTIONS = 8;
const NAMESPACES = 10_000;

interface Row {
  figure: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
  result: string;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const ratio = (x: number) => `${x.toFixed(2)}×`;
const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

/**
 * dist/ is what `serve` runs: build it when it is missing, older than a source file, or not the
 * bundle (a bare `tsc` writes an unbundled dist/cli.js, which starts and weighs like before
 * issue 11: about 0.5 s more to ready and 30 MB more RSS).
 */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  const cli = join(REPO, 'dist', 'cli.js');
  let built = 0;
  let bundled = false;
  try {
    built = statSync(cli).mtimeMs;
    // The unbundled cli.js imports its commands from ./commands/; the bundle holds them.
    bundled = !readFileSync(cli, 'utf8').includes("from './commands/");
  } catch {
    // not built yet
  }
  if (bundled && built > newest(join(REPO, 'src'))) return;
  progress('building dist/ (npm run build)');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO, stdio: 'inherit' });
}

async function inProcess(body: string, namespacesFile: string): Promise<Row> {
  progress('(a) in-process handling of a Deployment review');
  const product = await loadProduct();
  const handle = reviewHandler(product, new product.FileNamespaceSource(namespacesFile));
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await inProcessRound(body, handle, i > 0));
  const r = median(rounds.map((x) => x.webhookMicros / x.floorMicros));
  return {
    figure: `(a) in-process, Deployment review (${body.length} B)`,
    value: `${median(rounds.map((x) => x.webhookMicros)).toFixed(1)} µs`,
    baseline: `${median(rounds.map((x) => x.floorMicros)).toFixed(1)} µs JSON.parse+stringify`,
    ratio: ratio(r),
    target: '≤ 1.5×',
    result: verdict(r <= 1.5),
  };
}

async function httpsLoad(body: string, files: ReturnType<typeof benchFiles>, notes: string[]): Promise<Row[]> {
  const pinning = pinLoadGenerator();
  if (typeof pinning === 'string') notes.push(`(b) not pinned: ${pinning}`);
  else notes.push(`(b) pinned: servers on CPU ${pinning.server} (taskset -c), autocannon (this process) on CPU ${pinning.loadGenerator}`);
  notes.push('(b) the webhook logs warnings only, as (b) always measured; the "at info" row logs a line per admission (the default), asynchronously to a file');
  const cpu = typeof pinning === 'string' ? undefined : pinning.server;
  // Both with the image's node flags: they are the runtime's settings, not webhook logic.
  const image = imageNodeFlags();
  notes.push(`(b) both servers run with the node flags of ${image.from}: ${image.flags.join(' ') || 'none'}`);
  const servers = {
    webhook: await startServer('webhook', files, cpu, image.flags),
    'webhook-info': await startServer('webhook-info', files, cpu, image.flags),
    bare: await startServer('bare', files, cpu, image.flags),
  };
  const results = new Map<string, LoadResult[]>();
  /** Server CPU per answered request in each run, in µs, as the kernel accounts it. */
  const cpuPerRequest = new Map<string, CpuTime[]>();
  const measure = async (kind: keyof typeof servers, connections: number) => {
    const before = servers[kind].cpuTime();
    const result = await load(servers[kind].port, body, connections, LOAD_SECONDS);
    const after = servers[kind].cpuTime();
    const key = `${kind}/${connections}`;
    results.set(key, [...(results.get(key) ?? []), result]);
    const perRequest = { user: (after.user - before.user) / result.requests, system: (after.system - before.system) / result.requests };
    cpuPerRequest.set(key, [...(cpuPerRequest.get(key) ?? []), perRequest]);
  };
  try {
    progress('(b) warming up the servers');
    for (const server of Object.values(servers)) await load(server.port, body, 8, 2);
    for (let round = 0; round < ROUNDS; round++) {
      for (const connections of CONNECTIONS) {
        progress(`(b) round ${round + 1}/${ROUNDS}, ${connections} connection(s)`);
        // Alternate which server goes first, so drift over the run does not favour one.
        const order = round % 2 ? (['bare', 'webhook'] as const) : (['webhook', 'bare'] as const);
        for (const kind of order) await measure(kind, connections);
        if (connections === INFO_CONNECTIONS) await measure('webhook-info', connections);
      }
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
    if (typeof pinning !== 'string') unpin();
  }

  const rows: Row[] = [];
  for (const [key, runs] of results) {
    const failures = runs.reduce((n, r) => n + r.failures, 0);
    if (failures > 0) notes.push(`${key} connection(s): ${failures} non-2xx answers, errors or timeouts`);
  }
  for (const connections of CONNECTIONS) {
    const w = results.get(`webhook/${connections}`)!;
    const b = results.get(`bare/${connections}`)!;
    const rpsRatio = median(w.map((x, i) => x.rps / b[i]!.rps));
    rows.push({
      figure: `(b) HTTPS req/s, ${connections} conn`,
      value: median(w.map((x) => x.rps)).toFixed(0),
      baseline: `${median(b.map((x) => x.rps)).toFixed(0)} bare Fastify`,
      ratio: ratio(rpsRatio),
      target: connections === 1 ? '—' : '≥ 0.8×',
      result: connections === 1 ? 'info' : verdict(rpsRatio >= 0.8),
    });
    const info = results.get(`webhook-info/${connections}`);
    if (info) {
      rows.push({
        figure: `(b) HTTPS req/s, ${connections} conn, at info`,
        value: median(info.map((x) => x.rps)).toFixed(0),
        baseline: `${median(b.map((x) => x.rps)).toFixed(0)} bare Fastify`,
        ratio: ratio(median(info.map((x, i) => x.rps / b[i]!.rps))),
        target: '—',
        result: 'info',
      });
    }
    const cpu = (runs: CpuTime[]) => ({ user: median(runs.map((r) => r.user)), system: median(runs.map((r) => r.system)) });
    const wc = cpu(cpuPerRequest.get(`webhook/${connections}`)!);
    const bc = cpu(cpuPerRequest.get(`bare/${connections}`)!);
    const micros = (c: CpuTime) => `${(c.user + c.system).toFixed(0)} µs (user ${c.user.toFixed(0)}, sys ${c.system.toFixed(0)})`;
    rows.push({
      figure: `(b) server CPU per request, ${connections} conn`,
      value: micros(wc),
      baseline: `${micros(bc)} bare`,
      ratio: ratio((wc.user + wc.system) / (bc.user + bc.system)),
      target: '—',
      result: 'info',
    });
    for (const p of ['p50', 'p99'] as const) {
      const value = median(w.map((x) => x[p]));
      const base = median(b.map((x) => x[p]));
      const limited = p === 'p99' && connections === 32;
      rows.push({
        figure: `(b) HTTPS latency ${p}, ${connections} conn`,
        value: `${value.toFixed(2)} ms`,
        baseline: `${base.toFixed(2)} ms bare Fastify`,
        ratio: base > 0 ? ratio(value / base) : '—',
        target: limited ? '≤ 10 ms' : '—',
        result: limited ? verdict(value <= 10) : 'info',
      });
    }
  }
  return rows;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** (c) and (d) on each installed Node, against the API server with no namespaces of its own and with NAMESPACES. */
async function serveRows(api: BenchApiServer, files: ReturnType<typeof benchFiles>, nodes: NodeBinary[], nodeFlags: string[], filled: boolean): Promise<Row[]> {
  const count = filled ? NAMESPACES : 0;
  const rows: Row[] = [];
  for (const node of nodes) {
    progress(`(c)/(d) serve on Node ${node.version}, ${api.kind} with ${count} namespaces`);
    const rounds = [];
    for (let i = 0; i < SERVE_ROUNDS; i++) rounds.push({ serve: await measureServe(node, files, api.kubeconfig, count, nodeFlags), node: await nodeStartup(node) });
    const readyMs = median(rounds.map((r) => r.serve.readyMs));
    const readyTarget = filled ? 800 : 500;
    rows.push({
      figure: `(d) start to ready, ${count} namespaces, Node ${node.version}`,
      value: `${readyMs.toFixed(0)} ms (CPU ${median(rounds.map((r) => r.serve.readyCpuMs)).toFixed(0)} ms)`,
      baseline: `${median(rounds.map((r) => r.node)).toFixed(0)} ms node -e 0`,
      ratio: ratio(median(rounds.map((r) => r.serve.readyMs / r.node))),
      target: `≤ ${readyTarget / 1000} s`,
      result: verdict(readyMs <= readyTarget),
    });
    const rss = median(rounds.map((r) => r.serve.rss));
    rows.push({
      figure: `(c) RSS of serve, ${count} namespaces, Node ${node.version}`,
      value: mb(rss),
      baseline: `${(RSS_SETTLE_MS / 1000).toFixed(0)} s after ready`,
      ratio: '—',
      target: filled ? '≤ 120 MB' : '—',
      result: filled ? verdict(rss <= 120 * 2 ** 20) : 'info',
    });
  }
  return rows;
}

async function latencyRows(cluster: Cluster, version: string, files: ReturnType<typeof benchFiles>, notes: string[], cpu?: number): Promise<Row[]> {
  const { results: byClients, storageRetries } = await apiServerLatency(cluster, files, LATENCY_BATCHES, imageNodeFlags().flags, progress, cpu);
  if (storageRetries > 0) notes.push(`(e) ${version}: ${storageRetries} create(s) retried after an API server storage timeout; only the attempt that succeeded is timed`);
  const added = (b: LatencyBatch, c: 'project' | 'floor') => b.median[c] - b.median.none;
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const rows: Row[] = [];
  for (const [clients, batches] of byClients) {
    const r = median(batches.map((b) => added(b, 'project') / added(b, 'floor')));
    // The goal is issue 11's setting, eight clients; one client is shown beside it.
    const goal = clients === Math.max(...CLIENT_COUNTS);
    rows.push(
      {
        figure: `(e) ${version} latency added to API server creates, ${clients} client(s)`,
        value: ms(median(batches.map((b) => added(b, 'project')))),
        baseline: `${ms(median(batches.map((b) => added(b, 'floor'))))} floor webhook`,
        ratio: ratio(r),
        target: goal ? '≤ 1.1×' : '—',
        result: goal ? verdict(r <= 1.1) : 'info',
      },
      {
        figure: `(e) ${version} create latency p50 / p99, no webhook, ${clients} client(s)`,
        value: `${ms(median(batches.map((b) => b.median.none)))} / ${ms(median(batches.map((b) => b.p99.none)))}`,
        baseline: `${ms(median(batches.map((b) => b.p99.project)))} p99 with the webhook`,
        ratio: '—',
        target: '—',
        result: 'info',
      },
      {
        figure: `(e) ${version} new TLS connections per webhook call, ${clients} client(s)`,
        value: `${(100 * median(batches.map((b) => b.floorConnectionsPerCall))).toFixed(0)} %`,
        baseline: 'counted at the floor webhook',
        ratio: '—',
        target: '—',
        result: 'info',
      },
    );
  }
  return rows;
}

async function apiServerRows(files: ReturnType<typeof benchFiles>, notes: string[]): Promise<Row[]> {
  const nodes = nodeBinaries();
  const image = imageNodeFlags();
  notes.push(`(c), (d), (e) run serve with the node flags of ${image.from}: ${image.flags.join(' ') || 'none'}`);
  const { api, whyNotReal } = await startBenchApiServer(files.dir);
  if (whyNotReal) {
    notes.push(`(c), (d) ran against the unit tests' fake API server and (e) was left out: ${whyNotReal}`);
  } else {
    notes.push(`(c), (d), (e) ran against a real kube-apiserver + etcd on loopback (test/e2e/cluster.ts)`);
  }
  try {
    const rows = await serveRows(api, files, nodes, image.flags, false);
    progress(`(c) adding ${NAMESPACES} namespaces to the ${api.kind}`);
    await api.addNamespaces(NAMESPACES);
    rows.push(...(await serveRows(api, files, nodes, image.flags, true)));
    // (e) last: with the ~4,000 Deployments it creates already stored, (d) with 10,000
    // namespaces was 50-170 ms slower (two runs each way). (e) then runs among those namespaces.
    if (api.cluster) {
      rows.push(...(await latencyOn(api.cluster, release.version, files, notes)));
      rows.push(...(await sessionRows(api.cluster, files, notes)));
    }
    return rows;
  } finally {
    await api.stop();
  }
}

/** (e) on the release under test, then on every other tested release that is installed. */
async function latencyOn(cluster: Cluster, version: string, files: ReturnType<typeof benchFiles>, notes: string[], cpu?: number): Promise<Row[]> {
  try {
    return await latencyRows(cluster, version, files, notes, cpu);
  } catch (err) {
    // The other rows still stand; say why this one is missing.
    notes.push(`(e) ${version} failed and is left out: ${(err as Error).message}`);
    return [];
  }
}

/** (f): calls and time that matchConditions save on a realistic session; only where they exist. */
async function sessionRows(cluster: Cluster, files: ReturnType<typeof benchFiles>, notes: string[]): Promise<Row[]> {
  if (!atLeast('1.30')) {
    notes.push(`(f) left out: Kubernetes ${release.version} has no matchConditions`);
    return [];
  }
  try {
    const rounds = await sessionCost(cluster, files, SESSION_ROUNDS, imageNodeFlags().flags, progress);
    const calls = (c: 'conditions' | 'none') => median(rounds.map((r) => r.calls[c]));
    const ms = (c: 'conditions' | 'none') => median(rounds.map((r) => r.ms[c]));
    return [
      {
        figure: `(f) ${release.version} webhook calls of one session (11 requests)`,
        value: `${calls('conditions')} with matchConditions`,
        baseline: `${calls('none')} without`,
        ratio: ratio(calls('conditions') / calls('none')),
        target: '—',
        result: 'info',
      },
      {
        figure: `(f) ${release.version} time of one session`,
        value: `${ms('conditions').toFixed(1)} ms with matchConditions`,
        baseline: `${ms('none').toFixed(1)} ms without`,
        ratio: ratio(median(rounds.map((r) => r.ms.conditions / r.ms.none))),
        target: '—',
        result: 'info',
      },
    ];
  } catch (err) {
    notes.push(`(f) failed and is left out: ${(err as Error).message}`);
    return [];
  }
}

async function otherReleasesLatency(files: ReturnType<typeof benchFiles>, notes: string[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const minor of SUPPORTED_MINORS.filter((m) => m !== release.minor)) {
    const other = kubernetesRelease(minor);
    if (!(await isExecutable(`${other.binDir}/kube-apiserver`))) {
      notes.push(`(e) ${other.version} left out: not installed (${other.installHint})`);
      continue;
    }
    const cluster = await startCluster({ release: other });
    try {
      rows.push(...(await latencyOn(cluster, other.version, files, notes)));
    } finally {
      await cluster.stop();
    }
  }
  return rows;
}

/**
 * `npm run bench -- e`: (e) alone on the release under test, on a cluster of its own, with both
 * webhooks pinned to one CPU and this process (the client) to the other; the API server and etcd,
 * started before the pinning, keep both.
 */
async function pinnedLatencyRows(files: ReturnType<typeof benchFiles>, notes: string[]): Promise<Row[]> {
  const { api, whyNotReal } = await startBenchApiServer(files.dir);
  try {
    if (whyNotReal || !api.cluster) {
      notes.push(`(e) left out: ${whyNotReal}`);
      return [];
    }
    const pinning = pinLoadGenerator();
    if (typeof pinning === 'string') notes.push(`(e) not pinned: ${pinning}`);
    else notes.push(`(e) pinned: both webhooks on CPU ${pinning.server}, the client (this process) on CPU ${pinning.loadGenerator}, the API server and etcd on both`);
    try {
      return await latencyOn(api.cluster, release.version, files, notes, typeof pinning === 'string' ? undefined : pinning.server);
    } finally {
      if (typeof pinning !== 'string') unpin();
    }
  } finally {
    await api.stop();
  }
}

const ENGINE_LABELS: Record<EngineCase, string> = {
  webhook: 'webhook',
  policy: 'admission policies',
  kyverno: `Kyverno ${KYVERNO_VERSION}`,
  'kyverno-no-reports': `Kyverno ${KYVERNO_VERSION}, admission reports off`,
  none: 'no engine',
};

/** Kyverno's binary, built on first use, or why (g) goes without it. */
function kyvernoOrWhy(): string | { missing: string } {
  try {
    return installKyverno(progress);
  } catch (err) {
    return { missing: `its build failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** (g): the engines side by side on a cluster of their own (admission policies need 1.36+). */
async function engineRows(files: ReturnType<typeof benchFiles>, notes: string[]): Promise<Row[]> {
  if (!atLeast('1.36')) {
    notes.push(`(g) left out: admission policies need Kubernetes 1.36+, KUBE_VERSION=${release.minor}`);
    return [];
  }
  const kyverno = kyvernoOrWhy();
  const { api, whyNotReal } = await startBenchApiServer(files.dir);
  try {
    if (whyNotReal || !api.cluster) {
      notes.push(`(g) left out: ${whyNotReal}`);
      return [];
    }
    const f = await engineFigures(api.cluster, files, ENGINE_BATCHES, imageNodeFlags().flags, kyverno, progress);
    if (f.kyvernoMissing) notes.push(`(g) Kyverno left out: ${f.kyvernoMissing}`);
    const ms = (x: number) => `${x.toFixed(2)} ms`;
    const measured = ENGINES.filter((c) => c !== 'none' && f.cpu[c]);
    const rows: Row[] = [];
    for (const [inFlight, batches] of f.latency) {
      const added = (c: EngineCase, p: 'median' | 'p90') => {
        const with_ = batches.filter((b) => b[p][c] !== undefined);
        return median(with_.map((b) => b[p][c]! - b[p].none!));
      };
      const webhook = added('webhook', 'median');
      for (const c of measured) {
        const ratioToWebhook = added(c, 'median') / webhook;
        const goal = c === 'policy';
        rows.push({
          figure: `(g) latency added to a create, ${inFlight} in flight: ${ENGINE_LABELS[c]}`,
          value: `${ms(added(c, 'median'))} median, ${ms(added(c, 'p90'))} p90`,
          baseline: `${ms(median(batches.map((b) => b.median.none!)))} / ${ms(median(batches.map((b) => b.p90.none!)))} create, no engine`,
          ratio: c === 'webhook' ? '—' : `${ratio(ratioToWebhook)} webhook`,
          target: goal ? '≤ 1× webhook' : '—',
          result: goal ? verdict(ratioToWebhook <= 1) : 'info',
        });
      }
    }
    const none = f.cpu.none!;
    const addedCpu = (c: EngineCase) => f.cpu[c]!.apiServerMs + f.cpu[c]!.engineMs - none.apiServerMs;
    for (const c of measured) {
      const { apiServerMs, engineMs } = f.cpu[c]!;
      const r = addedCpu(c) / addedCpu('webhook');
      const goal = c === 'policy';
      rows.push({
        figure: `(g) CPU per create, ${LONG_BATCH_CREATES} creates at ${LONG_BATCH_IN_FLIGHT} in flight: ${ENGINE_LABELS[c]}`,
        value: `API server ${ms(apiServerMs)}${c === 'policy' ? '' : ` + engine ${ms(engineMs)}`}`,
        baseline: `API server ${ms(none.apiServerMs)}, no engine`,
        ratio: c === 'webhook' ? '—' : `${ratio(r)} webhook (added)`,
        target: goal ? '≤ 1× webhook' : '—',
        result: goal ? verdict(r <= 1) : 'info',
      });
    }
    for (const [c, p] of Object.entries(f.processes) as [EngineCase, NonNullable<(typeof f.processes)['webhook']>][]) {
      rows.push({
        figure: `(g) start to ready, RSS after the run: ${ENGINE_LABELS[c]}`,
        value: `${(p.readyMs / 1000).toFixed(2)} s, ${mb(p.rss)}`,
        baseline: `${(p.firstMutationMs / 1000).toFixed(2)} s to the first mutated create`,
        ratio: '—',
        target: '—',
        result: 'info',
      });
    }
    notes.push(`(g) ran on a fresh kube-apiserver ${release.version}: the shipped webhook configuration, \`realip-webhook policy\` and Kyverno's ClusterPolicies (test/bench/kyverno-policies.yaml), one namespace each`);
    return rows;
  } catch (err) {
    notes.push(`(g) failed and is left out: ${(err as Error).message}`);
    return [];
  } finally {
    await api.stop();
  }
}

function print(rows: Row[], notes: string[]): void {
  const header: Row = { figure: 'figure', value: 'value', baseline: 'baseline', ratio: 'ratio', target: 'target', result: 'result' };
  const keys = Object.keys(header) as (keyof Row)[];
  const widths = keys.map((k) => Math.max(...[header, ...rows].map((r) => r[k].length)));
  const line = (r: Row) => `| ${keys.map((k, i) => r[k].padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\nrealip-webhook bench: median of ${ROUNDS} rounds, ${LOAD_SECONDS} s per load run, Node ${process.version}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
  for (const note of notes) console.log(`note: ${note}`);
}

// `npm run bench -- b` runs only (b); sections: a, b, api (rows c, d, e, f), e (row e alone, pinned),
// engines (row g). Default: all but e, which api covers unpinned.
const SECTIONS = ['a', 'b', 'api', 'e', 'engines'];
const chosen = process.argv.slice(2);
const unknown = chosen.filter((s) => !SECTIONS.includes(s));
if (unknown.length > 0) {
  console.error(`bench: unknown section(s) ${unknown.join(', ')} (allowed: ${SECTIONS.join(', ')})`);
  process.exit(2);
}
const runs = (section: string) => (chosen.length === 0 && section !== 'e') || chosen.includes(section);

ensureBuilt();
const files = benchFiles();
try {
  const body = deploymentReviewBody();
  const notes: string[] = [];
  const loadBefore = loadavg()[0]!;
  const rows = [
    ...(runs('a') ? [await inProcess(body, files.namespaces)] : []),
    ...(runs('b') ? await httpsLoad(body, files, notes) : []),
    ...(runs('api') ? await apiServerRows(files, notes) : []),
    ...(runs('api') ? await otherReleasesLatency(files, notes) : []),
    ...(runs('e') ? await pinnedLatencyRows(files, notes) : []),
    ...(runs('engines') ? await engineRows(files, notes) : []),
  ];
  notes.push(`load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end, on ${availableParallelism()} CPUs`);
  print(rows, notes);
} finally {
  rmSync(files.dir, { recursive: true, force: true });
}
