// Kyverno for (g), beside the webhook and the admission policies: its admission controller, built
// from its Go module by test/kyverno/install-kyverno.sh (on first use: about 11 minutes on 2
// cores, so not in CI), run out of cluster with --serverIP against the bench's API server, with
// realip's rules as the ClusterPolicies of kyverno-policies.yaml (label prefix kyverno.realip.io).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from '../e2e/cluster.js';
import { freePorts } from '../support/net.js';
import { startChild } from './child.js';
import { REPO } from './workload.js';

export const KYVERNO_VERSION = '1.19.1';
export const KYVERNO_PREFIX = 'kyverno.realip.io';
const CACHE = process.env['REALIP_CACHE'] ?? '/var/cache/realip-webhook';
const NAMESPACE = 'kyverno';
const GIVE_UP_MS = 120_000;
const POLL_MS = 20;

/** The directory of the kyverno binary and its CRDs; builds them first when they are missing. */
export function installKyverno(progress: (line: string) => void): string {
  if (!existsSync(join(CACHE, `kyverno-${KYVERNO_VERSION}`, 'kyverno'))) {
    progress(`(g) building Kyverno v${KYVERNO_VERSION} from its Go module on first use (test/kyverno/install-kyverno.sh; about 11 minutes on 2 cores)`);
  }
  const out = execFileSync('bash', [join(REPO, 'test', 'kyverno', 'install-kyverno.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop()!;
}

/**
 * Once per cluster, before the first start: the CRDs, Kyverno's namespace, and its configuration,
 * whose webhook namespaceSelector keeps its webhooks to the namespaces labelled for it (as the
 * webhook's and the policies' own selectors do), and the ClusterPolicies.
 */
export async function prepareKyverno(cluster: Cluster, dir: string): Promise<void> {
  // Server-side: some CRDs are larger than the last-applied annotation allows.
  await cluster.kubectl(['apply', '--server-side', '-R', '-f', join(dir, 'crds')]);
  await cluster.kubectl(['wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', '--all']);
  const selector = { namespaceSelector: { matchExpressions: [{ key: `${KYVERNO_PREFIX}/inject`, operator: 'In', values: ['enabled'] }] } };
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kyverno', namespace: NAMESPACE }, data: { webhooks: JSON.stringify(selector) } },
  ];
  await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  await cluster.kubectl(['apply', '-f', join(REPO, 'test', 'bench', 'kyverno-policies.yaml')]);
}

/** What the Helm chart sets in the pod's environment; Kyverno exits without it. */
const KYVERNO_ENV = {
  KYVERNO_NAMESPACE: NAMESPACE,
  KYVERNO_SERVICEACCOUNT_NAME: 'kyverno-admission-controller',
  KYVERNO_DEPLOYMENT: 'kyverno-admission-controller',
  KYVERNO_POD_NAME: 'kyverno-bench',
  INIT_CONFIG: 'kyverno',
  METRICS_CONFIG: 'kyverno-metrics',
};

const getStatus = (url: string, agent: https.Agent) =>
  new Promise<number>((resolve) => {
    https.get(url, { agent, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0));
  });

/** Starts Kyverno's admission controller; `ready()` resolves with the milliseconds until its readiness probe answers 200. */
export async function startKyverno(dir: string, cluster: Cluster, admissionReports: boolean) {
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  const spawnedAt = performance.now();
  const child = startChild(
    [
      `--kubeconfig=${cluster.kubeconfig}`,
      `--serverIP=127.0.0.1:${port}`,
      '--webhookServerHost=127.0.0.1',
      `--webhookServerPort=${port}`,
      '--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca',
      '--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair',
      `--admissionReports=${admissionReports}`,
      '--metricsHost=127.0.0.1',
      `--metricsPort=${metricsPort}`,
      '--controllerRuntimeMetricsAddress=0',
      '--autoMemLimitEnabled=false',
      '--disableLogColor',
    ],
    { cwd: REPO, command: join(dir, 'kyverno'), env: { ...process.env, ...KYVERNO_ENV } },
  );
  return {
    child,
    ready: async () => {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while ((await getStatus(`https://127.0.0.1:${port}/health/readiness`, agent)) !== 200) {
          if (child.process.exitCode !== null) throw new Error(`kyverno exited with ${child.process.exitCode}: ${child.stderr()}`);
          if (performance.now() - spawnedAt > GIVE_UP_MS) throw new Error(`kyverno not ready after ${GIVE_UP_MS} ms: ${child.stderr()}`);
          await sleep(POLL_MS);
        }
      } finally {
        agent.destroy();
      }
      return performance.now() - spawnedAt;
    },
    spawnedAt,
  };
}
