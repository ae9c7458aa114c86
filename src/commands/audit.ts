// `realip-webhook audit`: lists the Services and workloads of opted-in namespaces that differ from
// what the webhook would make of them today (created before the label, or while the webhook was
// down), and with --fix services patches the Services, which restarts no pods.
import { accessSync, constants } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, labelPrefix } from '../config.js';
import { describeApiError } from '../kube/api-error.js';
import { KubeAuditCluster } from './audit-cluster.js';
import { formatTable, NamespaceNotFoundError, remainingDrift, runAudit } from './audit-scan.js';
import { oneOf, parseFlags } from './flags.js';

const FLAGS = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  'all-opted-in': { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  fix: { type: 'string' },
  'label-prefix': { type: 'string', default: 'realip.io' },
} as const;

export function auditUsage(): string {
  return [
    'Usage: realip-webhook audit [--kubeconfig K] [-n NS | --all-opted-in] [-o table|json] [--fix services] [--label-prefix P]',
    '',
    'Lists the Services, Deployments, StatefulSets, ReplicaSets (not owned by a Deployment), DaemonSets,',
    'Jobs (not owned by a CronJob) and CronJobs of opted-in namespaces that differ from what the webhook',
    'would make of them today, with the change it would make.',
    '',
    '  --kubeconfig K          kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)',
    '  -n, --namespace NS      audit this namespace only',
    '  --all-opted-in          audit every namespace labelled <prefix>/inject=enabled (the default)',
    '  -o, --output FORMAT     table (default on a terminal) or json (default otherwise)',
    '  --fix services          patch the Services in place (externalTrafficPolicy; restarts no pods);',
    '                          workloads are never changed: a new pod template would roll out new pods',
    '  --label-prefix P        prefix of labels and annotations (default realip.io)',
    '',
    'Exit status: 0 no drift (or all of it fixed), 1 drift remains or the cluster could not be read,',
    '2 bad flags or a namespace that does not exist.',
  ].join('\n');
}

/** Default kubeconfig loading, refusing its last resort (http://localhost:8080, no credentials). */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path !== undefined) {
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      throw new ConfigError(`--kubeconfig ${path}: cannot read the file (${(err as NodeJS.ErrnoException).code})`);
    }
    kubeConfig.loadFromFile(path);
    return kubeConfig;
  }
  kubeConfig.loadFromDefault();
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster?.name === 'cluster' && cluster.server === 'http://localhost:8080' && kubeConfig.getCurrentUser()?.name === 'user') {
    throw new ConfigError('no cluster configured: give --kubeconfig, set $KUBECONFIG, or create ~/.kube/config');
  }
  return kubeConfig;
}

export async function runAuditCommand(args: readonly string[]): Promise<number> {
  const flags = parseFlags('audit', args, FLAGS);
  if (flags.namespace !== undefined && flags['all-opted-in']) {
    throw new ConfigError('audit: -n and --all-opted-in are alternatives: give one of them, not both');
  }
  const fixServices = flags.fix !== undefined && oneOf('--fix', flags.fix, ['services'] as const) === 'services';
  const output = oneOf('-o', flags.output ?? (process.stdout.isTTY ? 'table' : 'json'), ['table', 'json'] as const);
  const prefix = labelPrefix(flags['label-prefix']);
  const cluster = new KubeAuditCluster(loadKubeConfig(flags.kubeconfig));

  let report;
  try {
    report = await runAudit(cluster, {
      labelPrefix: prefix,
      namespace: flags.namespace,
      fixServices,
      log: (line) => process.stderr.write(`audit: ${line}\n`),
    });
  } catch (err) {
    if (err instanceof NamespaceNotFoundError) throw new ConfigError(`-n: ${err.message}`);
    process.stderr.write(`realip-webhook: audit: reading the cluster failed: ${describeApiError(err)}\n`);
    return 1;
  }
  process.stdout.write(output === 'json' ? JSON.stringify(report, null, 2) + '\n' : formatTable(report));
  return remainingDrift(report).length > 0 ? 1 : 0;
}
