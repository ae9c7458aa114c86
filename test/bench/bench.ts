// npm run bench: what the webhook costs over the floor any JSON-over-HTTPS webhook pays. Every
// figure is a ratio against a baseline measured in the same run, over ROUNDS rounds, reported as
// the median. A benchmark, not a test: it prints a table and exits 0 whatever the numbers.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { apiServerWith, cacheMemory } from './cache-rss.js';
import { load, startServer, type LoadResult } from './http-load.js';
import { inProcessRound, reviewHandler } from './in-process.js';
import { loadProduct } from './product.js';
import { nodeStartup, startToReady } from './start-to-ready.js';
import { benchFiles, deploymentReviewBody, REPO } from './workload.js';

const ROUNDS = 5;
const LOAD_SECONDS = 3;
const CONNECTIONS = [1, 8, 32] as const;
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

/** dist/ is what `serve` runs: build it when it is missing or older than a source file. */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  let built = 0;
  try {
    built = statSync(join(REPO, 'dist', 'cli.js')).mtimeMs;
  } catch {
    // not built yet
  }
  if (built > newest(join(REPO, 'src'))) return;
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
  const webhook = await startServer('webhook', files);
  const bare = await startServer('bare', files);
  const results = new Map<string, LoadResult[]>();
  try {
    progress('(b) warming up both servers');
    await load(webhook.port, body, 8, 2);
    await load(bare.port, body, 8, 2);
    for (let round = 0; round < ROUNDS; round++) {
      for (const connections of CONNECTIONS) {
        progress(`(b) round ${round + 1}/${ROUNDS}, ${connections} connection(s)`);
        // Alternate which server goes first, so drift over the run does not favour one.
        const order = round % 2 ? (['bare', 'webhook'] as const) : (['webhook', 'bare'] as const);
        for (const kind of order) {
          const result = await load((kind === 'webhook' ? webhook : bare).port, body, connections, LOAD_SECONDS);
          const key = `${kind}/${connections}`;
          results.set(key, [...(results.get(key) ?? []), result]);
        }
      }
    }
  } finally {
    await webhook.stop();
    await bare.stop();
  }

  const rows: Row[] = [];
  for (const connections of CONNECTIONS) {
    const w = results.get(`webhook/${connections}`)!;
    const b = results.get(`bare/${connections}`)!;
    for (const [kind, runs] of [['webhook', w], ['bare', b]] as const) {
      const failures = runs.reduce((n, r) => n + r.failures, 0);
      if (failures > 0) notes.push(`${kind} at ${connections} connection(s): ${failures} non-2xx answers, errors or timeouts`);
    }
    const rpsRatio = median(w.map((x, i) => x.rps / b[i]!.rps));
    rows.push({
      figure: `(b) HTTPS req/s, ${connections} conn`,
      value: median(w.map((x) => x.rps)).toFixed(0),
      baseline: `${median(b.map((x) => x.rps)).toFixed(0)} bare Fastify`,
      ratio: ratio(rpsRatio),
      target: '≥ 0.8×',
      result: verdict(rpsRatio >= 0.8),
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

async function memory(): Promise<Row> {
  progress(`(c) RSS with ${NAMESPACES} namespaces in the cache`);
  const full = await apiServerWith(NAMESPACES);
  const empty = await apiServerWith(0);
  const rounds = [];
  try {
    for (let i = 0; i < ROUNDS; i++) rounds.push({ full: await cacheMemory(full, NAMESPACES), empty: await cacheMemory(empty, 0) });
  } finally {
    await full.close();
    await empty.close();
  }
  const mb = (bytes: number) => bytes / 2 ** 20;
  const rss = median(rounds.map((r) => mb(r.full.rss)));
  return {
    figure: `(c) RSS, ${NAMESPACES} namespaces cached`,
    value: `${rss.toFixed(1)} MB (heap ${median(rounds.map((r) => mb(r.full.heapUsed))).toFixed(1)})`,
    baseline: `${median(rounds.map((r) => mb(r.empty.rss))).toFixed(1)} MB (heap ${median(rounds.map((r) => mb(r.empty.heapUsed))).toFixed(1)}) cache empty`,
    ratio: ratio(median(rounds.map((r) => r.full.rss / r.empty.rss))),
    target: '≤ 120 MB',
    result: verdict(rss <= 120),
  };
}

async function startUp(files: ReturnType<typeof benchFiles>): Promise<Row> {
  progress('(d) start to ready');
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push({ serve: await startToReady(files), node: await nodeStartup() });
  const serve = median(rounds.map((r) => r.serve));
  return {
    figure: '(d) start to ready (dist/cli.js serve)',
    value: `${serve.toFixed(0)} ms`,
    baseline: `${median(rounds.map((r) => r.node)).toFixed(0)} ms node -e 0`,
    ratio: ratio(median(rounds.map((r) => r.serve / r.node))),
    target: '≤ 1 s',
    result: verdict(serve <= 1000),
  };
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

ensureBuilt();
const files = benchFiles();
try {
  const body = deploymentReviewBody();
  const notes: string[] = [];
  const rows = [await inProcess(body, files.namespaces), ...(await httpsLoad(body, files, notes)), await memory(), await startUp(files)];
  print(rows, notes);
} finally {
  rmSync(files.dir, { recursive: true, force: true });
}
