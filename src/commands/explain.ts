// `realip-webhook explain service NAME -n NS`: reads the live cluster (read-only) and prints where
// the client's IP is kept or lost on its way from the client to the app, hop by hop.
import { ConfigError, labelPrefix } from '../config.js';
import { explain, formatTable } from '../explain/explain.js';
import { loadKubeConfig } from './audit.js';
import { EXPLAIN_RBAC, ExplainInputError, ExplainReader } from './explain-cluster.js';
import { oneOf, parseFlags } from './flags.js';

const FLAGS = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o' },
  'label-prefix': { type: 'string', default: 'realip.io' },
} as const;

export function explainUsage(): string {
  return [
    'Usage: realip-webhook explain service NAME -n NS [--kubeconfig K] [-o table|json] [--label-prefix P]',
    '',
    'Reads the cluster (read-only) and prints each hop from the client to the app: entry (Ingress or',
    'HTTPRoute to the controller\'s Service), L4 (externalTrafficPolicy, cloud annotations), spread of',
    'endpoints over nodes and zones, in the pod (istio-proxy interception, Pod Security, ambient) and',
    'L7 (ingress-nginx\'s ConfigMap), each kept / lost / at risk / unknown, with evidence and the fix.',
    '',
    '  -n, --namespace NS      the Service\'s namespace (required)',
    '  --kubeconfig K          kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)',
    '  -o, --output FORMAT     table (default on a terminal) or json (default otherwise)',
    '  --label-prefix P        prefix of the webhook\'s labels and annotations (default realip.io)',
    '',
    'RBAC it reads with (a permission it lacks makes that hop "unknown (cannot list X: forbidden)"):',
    ...EXPLAIN_RBAC.map((r) => `  ${r.verbs.join(', ')} ${r.resources.join(', ')}${r.apiGroups[0] ? ` (${r.apiGroups[0]})` : ''}`),
    '',
    'Exit status: 0 the client IP reaches the app, 1 it is lost or at risk on some hop (or a hop is',
    'unknown, or the Service could not be read), 2 bad flags or a Service that does not exist.',
  ].join('\n');
}

export async function runExplain(args: readonly string[]): Promise<number> {
  const [what, name, ...rest] = args;
  if (what !== 'service' || name === undefined || name.startsWith('-')) {
    throw new ConfigError(`explain: give the Service to explain: explain service NAME -n NS (got ${JSON.stringify(args.slice(0, 2).join(' '))})`);
  }
  const flags = parseFlags('explain', rest, FLAGS);
  if (flags.namespace === undefined) throw new ConfigError('explain: -n NAMESPACE is required');
  const output = oneOf('-o', flags.output ?? (process.stdout.isTTY ? 'table' : 'json'), ['table', 'json'] as const);
  const prefix = labelPrefix(flags['label-prefix']);
  const reader = new ExplainReader(loadKubeConfig(flags.kubeconfig));

  let facts;
  try {
    facts = await reader.read(flags.namespace, name, prefix);
  } catch (err) {
    if (err instanceof ExplainInputError) throw new ConfigError(err.message);
    process.stderr.write(`realip-webhook: explain: ${(err as Error).message}\n`);
    return 1;
  }
  const report = explain(facts);
  process.stdout.write(output === 'json' ? JSON.stringify(report, null, 2) + '\n' : formatTable(report));
  return report.exitCode;
}
