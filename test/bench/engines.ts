// (g) The engines through one real kube-apiserver (1.36+): the webhook, the admission policies,
// Kyverno (without its admission reports, then with them) and no engine at all, each in a namespace of
// its own (its own label prefix), side by side in one run. For each: the latency it adds to a
// Deployment create at 1 and 8 in flight (median and p90, interleaved batches so drift hits all
// alike), the CPU per create of the API server and of the engine's process over a long batch
// (the API server's garbage collection lands in whichever short batch triggers it), and for the
// processes their RSS and start to ready. The webhook is registered with its shipped
// configuration; the policies are the `policy` command's output; Kyverno runs the ClusterPolicies
// of kyverno-policies.yaml.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../e2e/cluster.js';
import { adaptWebhookConfiguration, shippedWebhookConfiguration } from '../e2e/webhook-harness.js';
import { deployment } from '../fixtures/objects.js';
import { apiClient, retryUntilAdmitted } from './api-server.js';
import { cpuTime } from './child.js';
import { percentile } from './http-load.js';
import { KYVERNO_PREFIX, prepareKyverno, startKyverno } from './kyverno.js';
import { rssBytes, startServe } from './serve-process.js';
import { REPO, type BenchFiles } from './workload.js';

/** Kyverno appears twice: with its admission reports (its default) and without. */
export const ENGINES = ['webhook', 'policy', 'kyverno', 'kyverno-no-reports', 'none'] as const;
export type EngineCase = (typeof ENGINES)[number];
export type KyvernoCase = 'kyverno' | 'kyverno-no-reports';
export const IN_FLIGHT = [1, 8] as const;
const CREATES_PER_BATCH: Record<(typeof IN_FLIGHT)[number], number> = { 1: 32, 8: 64 };
const POLICY_PREFIX = 'policy.realip.io';
export const LONG_BATCH_CREATES = 1_000;
export const LONG_BATCH_IN_FLIGHT = 8;
const WARM_UP_GIVE_UP_MS = 60_000;
/**
 * Kyverno writes its admission reports after it answers, so the CPU of a long batch is read once
 * the API server has gone quiet (under a tenth of a CPU over a SETTLE_MS window), or after SETTLE_GIVE_UP_MS.
 */
const SETTLE_MS = 500;
const SETTLE_GIVE_UP_MS = 30_000;

export interface LatencyBatch {
  /** Median and p90 create latency (ms) of each engine measured in this batch. */
  median: Partial<Record<EngineCase, number>>;
  p90: Partial<Record<EngineCase, number>>;
}

export interface ProcessFigures {
  readyMs: number;
  /** From the spawn until the first create in its namespace came back mutated. */
  firstMutationMs: number;
  rss: number;
}

export interface EngineFigures {
  latency: Map<number, LatencyBatch[]>;
  /** Per create, in ms, over a long batch: the API server's CPU and the engine process's. */
  cpu: Partial<Record<EngineCase, { apiServerMs: number; engineMs: number }>>;
  processes: Partial<Record<'webhook' | KyvernoCase, ProcessFigures>>;
  /** Why Kyverno is left out, when it is. */
  kyvernoMissing?: string;
}

const cpuMs = (pid: number) => {
  const { user, system } = cpuTime(pid);
  return (user + system) / 1000;
};

async function settled(apiServer: number): Promise<void> {
  const deadline = performance.now() + SETTLE_GIVE_UP_MS;
  for (let before = cpuMs(apiServer); performance.now() < deadline; ) {
    await sleep(SETTLE_MS);
    const now = cpuMs(apiServer);
    if (now - before < SETTLE_MS / 10) return;
    before = now;
  }
}

export async function engineFigures(
  cluster: Cluster,
  files: BenchFiles,
  batches: number,
  nodeFlags: string[],
  kyvernoDir: string | { missing: string },
  progress: (line: string) => void,
): Promise<EngineFigures> {
  const client = apiClient(cluster, Math.max(...IN_FLIGHT, LONG_BATCH_IN_FLIGHT));
  const namespaceOf = (c: EngineCase) => `bench-engine-${c === 'kyverno-no-reports' ? 'kyverno' : c}`;
  const object = deployment() as { metadata: Record<string, unknown> };
  delete object.metadata['name'];
  object.metadata['generateName'] = 'bench-';
  /** One create, checked: the engine (or none) changed it. */
  const create = async (c: EngineCase): Promise<number> => {
    const started = performance.now();
    const { status, json } = await client.call('POST', `/apis/apps/v1/namespaces/${namespaceOf(c)}/deployments`, { ...object, metadata: { ...object.metadata, namespace: namespaceOf(c) } });
    const ms = performance.now() - started;
    if (status !== 201) throw new Error(`create in ${namespaceOf(c)}: HTTP ${status} ${JSON.stringify(json?.message)}`);
    const mutated = json.spec.template.spec.affinity !== undefined && json.spec.template.metadata.annotations?.['sidecar.istio.io/interceptionMode'] === 'TPROXY';
    if (mutated !== (c !== 'none')) throw new Error(`create in ${namespaceOf(c)} was ${mutated ? '' : 'not '}mutated`);
    return ms;
  };
  /** Resolves once a create in c's namespace comes back mutated, with the time since `since`. */
  const firstMutation = async (c: EngineCase, since: number) => {
    await retryUntilAdmitted(() => create(c).then(() => undefined), WARM_UP_GIVE_UP_MS);
    return performance.now() - since;
  };

  const webhookSpawned = performance.now();
  const serve = await startServe(files, cluster.kubeconfig, undefined, nodeFlags);
  const stops: (() => Promise<void>)[] = [() => serve.child.stop()];
  try {
    const webhookReadyMs = await serve.ready();
    const caBundle = readFileSync(files.ca).toString('base64');
    const config = adaptWebhookConfiguration(await shippedWebhookConfiguration(), `https://127.0.0.1:${serve.port}/mutate`, caBundle);
    await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(config) });
    const policies = execFileSync(process.execPath, [join(REPO, 'dist', 'cli.js'), 'policy', '--label-prefix', POLICY_PREFIX], { encoding: 'utf8' });
    await cluster.kubectl(['apply', '-f', '-'], { stdin: policies });
    const labels: Record<string, Record<string, string>> = {
      policy: { [`${POLICY_PREFIX}/inject`]: 'enabled' },
      webhook: { 'realip.io/inject': 'enabled' },
      kyverno: { [`${KYVERNO_PREFIX}/inject`]: 'enabled' },
      none: {},
    };
    for (const c of ['webhook', 'policy', 'kyverno', 'none'] as const) {
      await client.call('POST', '/api/v1/namespaces', { metadata: { name: namespaceOf(c), labels: labels[c] } });
    }

    progress('(g) waiting for the API server to run the policies and call the webhook');
    const processes: EngineFigures['processes'] = {};
    processes.webhook = { readyMs: webhookReadyMs, firstMutationMs: await firstMutation('webhook', webhookSpawned), rss: 0 };
    await retryUntilAdmitted(() => create('policy').then(() => undefined), WARM_UP_GIVE_UP_MS);

    const latency = new Map<number, LatencyBatch[]>(IN_FLIGHT.map((n) => [n, []]));
    const cpu: EngineFigures['cpu'] = {};
    const run = async (c: EngineCase, inFlight: number, creates: number) => {
      const latencies: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next++ < creates) latencies.push(await create(c));
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      return latencies.sort((a, b) => a - b);
    };
    /** Interleaved batches of these engines at each in-flight count; batch 0 warms up and is not counted. */
    const measureLatency = async (cases: readonly EngineCase[]) => {
      for (const inFlight of IN_FLIGHT) {
        for (let batch = 0; batch <= batches; batch++) {
          if (batch > 0) progress(`(g) ${cases.join(', ')}: ${inFlight} in flight, batch ${batch}/${batches}`);
          const result: LatencyBatch = { median: {}, p90: {} };
          for (const c of cases.map((_, i) => cases[(i + batch) % cases.length]!)) {
            const latencies = await run(c, inFlight, CREATES_PER_BATCH[inFlight]);
            result.median[c] = percentile(latencies, 0.5);
            result.p90[c] = percentile(latencies, 0.9);
          }
          if (batch > 0) latency.get(inFlight)!.push(result);
        }
      }
    };
    const measureCpu = async (c: EngineCase, enginePid: number | undefined) => {
      progress(`(g) ${c}: ${LONG_BATCH_CREATES} creates, ${LONG_BATCH_IN_FLIGHT} in flight, for the CPU per create`);
      const apiServer = cluster.apiserverPid();
      const [apiBefore, engineBefore] = [cpuMs(apiServer), enginePid ? cpuMs(enginePid) : 0];
      await run(c, LONG_BATCH_IN_FLIGHT, LONG_BATCH_CREATES);
      await settled(apiServer);
      cpu[c] = {
        apiServerMs: (cpuMs(apiServer) - apiBefore) / LONG_BATCH_CREATES,
        engineMs: enginePid ? (cpuMs(enginePid) - engineBefore) / LONG_BATCH_CREATES : 0,
      };
    };
    const webhookPid = serve.child.process.pid!;

    let kyvernoMissing = typeof kyvernoDir === 'string' ? undefined : kyvernoDir.missing;
    if (typeof kyvernoDir === 'string') {
      try {
        await prepareKyverno(cluster, kyvernoDir);
      } catch (err) {
        kyvernoMissing = `its CRDs, configuration or ClusterPolicies were refused: ${(err as Error).message}`;
      }
    }
    // First without Kyverno; then Kyverno without its admission reports, beside the others; last
    // with them: it writes a report per admission after answering, and the API server's work for
    // that backlog would land on whatever is measured next.
    await measureLatency(['webhook', 'policy', 'none']);
    for (const c of ['webhook', 'policy', 'none'] as const) await measureCpu(c, c === 'webhook' ? webhookPid : undefined);
    const kyvernoCases: KyvernoCase[] = kyvernoMissing ? [] : ['kyverno-no-reports', 'kyverno'];
    for (const k of kyvernoCases) {
      progress(`(g) starting Kyverno (admission reports ${k === 'kyverno' ? 'on' : 'off'})`);
      const kyverno = await startKyverno(kyvernoDir as string, cluster, k === 'kyverno');
      stops.push(() => kyverno.child.stop());
      const readyMs = await kyverno.ready();
      processes[k] = { readyMs, firstMutationMs: await firstMutation(k, kyverno.spawnedAt), rss: 0 };
      const kyvernoPid = kyverno.child.process.pid!;
      await measureLatency(k === 'kyverno' ? [k, 'none'] : ['webhook', 'policy', k, 'none']);
      await measureCpu(k, kyvernoPid);
      processes[k]!.rss = rssBytes(kyvernoPid);
      await stops.pop()!();
    }
    processes.webhook.rss = rssBytes(webhookPid);
    return { latency, cpu, processes, ...(kyvernoMissing && { kyvernoMissing }) };
  } finally {
    client.close();
    for (const stop of stops.reverse()) await stop();
  }
}
