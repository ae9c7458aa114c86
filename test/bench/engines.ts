// (f) The two engines through a real kube-apiserver (1.36+): the latency the admission policies
// and the webhook each add to a Deployment create, against no engine at all, measured in
// interleaved batches like (e); then a storm of creates at eight in flight under each engine,
// with the wall time and the CPU the API server (and, for the webhook, the webhook process) used.
// The webhook is registered with its shipped configuration; the policies are the `policy`
// command's output. Each engine has a namespace of its own (its own label prefix).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '../e2e/cluster.js';
import { adaptWebhookConfiguration, shippedWebhookConfiguration } from '../e2e/webhook-harness.js';
import { deployment } from '../fixtures/objects.js';
import { apiClient, retryUntilAdmitted } from './api-server.js';
import { cpuTime } from './child.js';
import { percentile } from './http-load.js';
import { startServe } from './serve-process.js';
import { REPO, type BenchFiles } from './workload.js';

export const ENGINES = ['policy', 'webhook', 'none'] as const;
export type EngineCase = (typeof ENGINES)[number];
const POLICY_PREFIX = 'policy.realip.io';
const CREATES_PER_BATCH = 32;
export const STORM_CREATES = 1_000;
export const STORM_IN_FLIGHT = 8;
const WARM_UP_GIVE_UP_MS = 30_000;

export interface EngineFigures {
  /** Per batch, the median create latency (ms) under each engine, one client. */
  batches: Record<EngineCase, number>[];
  p99: Record<EngineCase, number>;
  storm: Record<EngineCase, { seconds: number; apiServerCpuSeconds: number; webhookCpuSeconds?: number }>;
}

const cpuSeconds = (pid: number) => {
  const { user, system } = cpuTime(pid);
  return (user + system) / 1e6;
};

export async function engineFigures(cluster: Cluster, files: BenchFiles, batches: number, nodeFlags: string[], progress: (line: string) => void): Promise<EngineFigures> {
  const client = apiClient(cluster, STORM_IN_FLIGHT);
  const serve = await startServe(files, cluster.kubeconfig, undefined, nodeFlags);
  try {
    await serve.ready();
    const caBundle = readFileSync(files.ca).toString('base64');
    const config = adaptWebhookConfiguration(await shippedWebhookConfiguration(), `https://127.0.0.1:${serve.port}/mutate`, caBundle);
    await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(config) });
    const policies = execFileSync(process.execPath, [join(REPO, 'dist', 'cli.js'), 'policy', '--label-prefix', POLICY_PREFIX], { encoding: 'utf8' });
    await cluster.kubectl(['apply', '-f', '-'], { stdin: policies });
    const namespaceOf = (c: EngineCase) => `bench-engine-${c}`;
    const labels: Record<EngineCase, Record<string, string>> = {
      policy: { [`${POLICY_PREFIX}/inject`]: 'enabled' },
      webhook: { 'realip.io/inject': 'enabled' },
      none: {},
    };
    for (const c of ENGINES) await client.call('POST', '/api/v1/namespaces', { metadata: { name: namespaceOf(c), labels: labels[c] } });

    const object = deployment() as { metadata: Record<string, unknown> };
    delete object.metadata['name'];
    object.metadata['generateName'] = 'bench-';
    /** One create, checked: the engine (or none) changed it. */
    const create = async (c: EngineCase): Promise<number> => {
      const started = performance.now();
      const { status, json } = await client.call('POST', `/apis/apps/v1/namespaces/${namespaceOf(c)}/deployments`, { ...object, metadata: { ...object.metadata, namespace: namespaceOf(c) } });
      const ms = performance.now() - started;
      if (status !== 201) throw new Error(`create in ${namespaceOf(c)}: HTTP ${status} ${JSON.stringify(json?.message)}`);
      const mutated = json.spec.template.spec.affinity !== undefined;
      if (mutated !== (c !== 'none')) throw new Error(`create in ${namespaceOf(c)} was ${mutated ? '' : 'not '}mutated`);
      return ms;
    };

    progress('(f) waiting for the API server to run the policies and call the webhook');
    await retryUntilAdmitted(async () => {
      await create('policy');
      await create('webhook');
    }, WARM_UP_GIVE_UP_MS);

    const all = new Map<EngineCase, number[]>(ENGINES.map((c) => [c, []]));
    const perBatch: Record<EngineCase, number>[] = [];
    // Batch 0 warms every path up and is not counted.
    for (let batch = 0; batch <= batches; batch++) {
      if (batch > 0) progress(`(f) latency, batch ${batch}/${batches}`);
      const medians = {} as Record<EngineCase, number>;
      for (const c of ENGINES.map((_, i) => ENGINES[(i + batch) % ENGINES.length]!)) {
        const latencies: number[] = [];
        for (let i = 0; i < CREATES_PER_BATCH; i++) latencies.push(await create(c));
        latencies.sort((a, b) => a - b);
        medians[c] = percentile(latencies, 0.5);
        if (batch > 0) all.get(c)!.push(...latencies);
      }
      if (batch > 0) perBatch.push(medians);
    }
    const p99 = Object.fromEntries(ENGINES.map((c) => [c, percentile(all.get(c)!.sort((a, b) => a - b), 0.99)])) as Record<EngineCase, number>;

    const apiServer = cluster.apiserverPid();
    const webhookPid = serve.child.process.pid!;
    const storm = {} as EngineFigures['storm'];
    for (const c of ENGINES) {
      progress(`(f) storm: ${STORM_CREATES} creates, ${STORM_IN_FLIGHT} in flight, ${c}`);
      const [apiBefore, webhookBefore] = [cpuSeconds(apiServer), cpuSeconds(webhookPid)];
      const started = performance.now();
      let next = 0;
      const worker = async () => {
        while (next++ < STORM_CREATES) await create(c);
      };
      await Promise.all(Array.from({ length: STORM_IN_FLIGHT }, worker));
      storm[c] = {
        seconds: (performance.now() - started) / 1000,
        apiServerCpuSeconds: cpuSeconds(apiServer) - apiBefore,
        ...(c === 'webhook' && { webhookCpuSeconds: cpuSeconds(webhookPid) - webhookBefore }),
      };
    }
    return { batches: perBatch, p99, storm };
  } finally {
    client.close();
    await serve.child.stop();
  }
}
