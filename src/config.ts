// Command-line flags and their REALIP_* environment twins, parsed and checked once at start.
// Nothing else in the program reads process.env.
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where namespace labels come from, and why that source was chosen (said in the start-up log). */
export type NamespaceSourceConfig =
  | { type: 'file'; path: string; reason: string }
  | { type: 'kubeconfig'; path: string; reason: string }
  | { type: 'in-cluster'; reason: string };

export interface ServeConfig {
  port: number;
  host: string;
  /** Plain-HTTP port of GET /metrics. */
  metricsPort: number;
  tlsCert: string;
  tlsKey: string;
  /** CA bundle that client certificates on POST /mutate must chain to; unset: no client check. */
  clientCa?: string | undefined;
  namespaces: NamespaceSourceConfig;
  labelPrefix: string;
  failClosed: boolean;
  logLevel: LogLevel;
  /** Watch Nodes for the node-aware warnings; needs a cluster and RBAC on nodes. */
  watchNodes: boolean;
  /** Find objects admitted unmutated (no replica answered): patch Services, report workloads. */
  repair: boolean;
}

export const BUNDLED_NAMESPACES_FILE = fileURLToPath(
  new URL('../manifests/examples/namespaces.yaml', import.meta.url),
);
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

interface FlagSpec {
  type: 'string' | 'boolean';
  env: string;
  help: string;
  default?: string;
}

export const SERVE_FLAGS = {
  port: { type: 'string', env: 'REALIP_PORT', default: '8443', help: 'HTTPS port' },
  host: { type: 'string', env: 'REALIP_HOST', default: '0.0.0.0', help: 'address to listen on' },
  'metrics-port': { type: 'string', env: 'REALIP_METRICS_PORT', default: '9090', help: 'plain-HTTP port of GET /metrics (Prometheus)' },
  'tls-cert': { type: 'string', env: 'REALIP_TLS_CERT', help: 'serving certificate file (PEM), required' },
  'tls-key': { type: 'string', env: 'REALIP_TLS_KEY', help: 'serving key file (PEM), required' },
  'client-ca': {
    type: 'string',
    env: 'REALIP_CLIENT_CA',
    help: 'CA bundle (PEM): POST /mutate then requires a client certificate it signed (the API server can present one)',
  },
  kubeconfig: {
    type: 'string',
    env: 'REALIP_KUBECONFIG',
    help: 'kubeconfig for the namespace watch (else in-cluster, else $KUBECONFIG or ~/.kube/config)',
  },
  'namespaces-file': {
    type: 'string',
    env: 'REALIP_NAMESPACES_FILE',
    help: 'read namespace labels from this YAML/JSON list of Namespaces instead of a cluster',
  },
  'label-prefix': { type: 'string', env: 'REALIP_LABEL_PREFIX', default: 'realip.io', help: 'prefix of labels and annotations' },
  'fail-closed': {
    type: 'boolean',
    env: 'REALIP_FAIL_CLOSED',
    help: 'answer HTTP 500 instead of admitting unchanged when an object cannot be processed',
  },
  'log-level': { type: 'string', env: 'REALIP_LOG_LEVEL', default: 'info', help: LOG_LEVELS.join(', ') },
  'watch-nodes': {
    type: 'boolean',
    env: 'REALIP_WATCH_NODES',
    help: 'watch Nodes to warn when required anti-affinity leaves pods Pending or stalls a rollout (needs nodes get/list/watch)',
  },
  repair: {
    type: 'string',
    env: 'REALIP_REPAIR',
    default: 'on',
    help: 'on: find objects of opted-in namespaces admitted unmutated while no replica answered; patch Services, report workloads in an Event (needs a cluster and the RBAC of manifests/base); off: never',
  },
} as const satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof SERVE_FLAGS;
type Env = Readonly<Record<string, string | undefined>>;

/** Flag, else environment twin, else default. */
function rawValues(argv: readonly string[], env: Env): Partial<Record<FlagName, string | boolean>> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(SERVE_FLAGS).map(([name, spec]) => [name, { type: spec.type }])),
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    const allowed = Object.keys(SERVE_FLAGS).map((f) => `--${f}`).join(', ');
    throw new ConfigError(`${(err as Error).message} (allowed flags: ${allowed})`);
  }
  const values: Partial<Record<FlagName, string | boolean>> = {};
  for (const [name, spec] of Object.entries(SERVE_FLAGS) as [FlagName, FlagSpec][]) {
    const fromFlag = parsed.values[name];
    const fromEnv = env[spec.env];
    if (fromFlag !== undefined) values[name] = fromFlag;
    else if (fromEnv !== undefined && fromEnv !== '') values[name] = spec.type === 'boolean' ? envBoolean(spec.env, fromEnv) : fromEnv;
    else if (spec.default !== undefined) values[name] = spec.default;
  }
  return values;
}

function envBoolean(name: string, value: string): boolean {
  if (['true', '1', 'yes'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(value.toLowerCase())) return false;
  throw new ConfigError(`${name}=${JSON.stringify(value)} is not a boolean (allowed: true, false, 1, 0, yes, no)`);
}

function port(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) {
    throw new ConfigError(`--${flag} ${JSON.stringify(value)} is not a port (allowed: a whole number from 1 to 65535)`);
  }
  return n;
}

function readableFile(flag: string, path: string): string {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new ConfigError(`--${flag} ${path}: cannot read the file (${(err as NodeJS.ErrnoException).code})`);
  }
  return path;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function labelPrefix(value: string): string {
  if (value.length > 253 || !DNS_SUBDOMAIN.test(value)) {
    throw new ConfigError(
      `--label-prefix ${JSON.stringify(value)} is not a DNS subdomain (allowed: lowercase letters, digits, '-' and '.', at most 253 characters, e.g. realip.io)`,
    );
  }
  return value;
}

function logLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(`--log-level ${JSON.stringify(value)} is not a level (allowed: ${LOG_LEVELS.join(', ')})`);
  }
  return value as LogLevel;
}

/**
 * Explicit flags first; then in-cluster; then the usual kubeconfig; else the example file next to
 * dist/ in a checkout or npm package (`npm start` with no cluster). The image carries no example:
 * there, no source at all is a usage error, not labels made up for a cluster it cannot see.
 */
export function namespaceSource(
  kubeconfig: string | undefined,
  namespacesFile: string | undefined,
  env: Env,
  exists: (path: string) => boolean,
): NamespaceSourceConfig {
  if (kubeconfig && namespacesFile) {
    throw new ConfigError('--kubeconfig and --namespaces-file are alternatives: give one of them, not both');
  }
  if (namespacesFile) return { type: 'file', path: readableFile('namespaces-file', namespacesFile), reason: '--namespaces-file' };
  if (kubeconfig) return { type: 'kubeconfig', path: readableFile('kubeconfig', kubeconfig), reason: '--kubeconfig' };
  if (env['KUBERNETES_SERVICE_HOST'] && exists(IN_CLUSTER_TOKEN)) return { type: 'in-cluster', reason: 'running in a cluster' };
  const fromEnv = env['KUBECONFIG']?.split(':').find((p) => p && exists(p));
  if (fromEnv) return { type: 'kubeconfig', path: fromEnv, reason: '$KUBECONFIG' };
  const home = join(env['HOME'] ?? homedir(), '.kube', 'config');
  if (exists(home)) return { type: 'kubeconfig', path: home, reason: '~/.kube/config' };
  const noCluster = 'no cluster configured (no --kubeconfig, not in a cluster, no $KUBECONFIG or ~/.kube/config)';
  if (!exists(BUNDLED_NAMESPACES_FILE)) {
    throw new ConfigError(
      `no namespace source: ${noCluster}, and no --namespaces-file; give --kubeconfig or --namespaces-file (or set ${SERVE_FLAGS.kubeconfig.env} or ${SERVE_FLAGS['namespaces-file'].env})`,
    );
  }
  return { type: 'file', path: BUNDLED_NAMESPACES_FILE, reason: noCluster };
}

function fileExists(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export function parseServeConfig(argv: readonly string[], env: Env, exists = fileExists): ServeConfig {
  const v = rawValues(argv, env);
  const str = (name: FlagName) => v[name] as string | undefined;
  const required = (name: FlagName) => {
    const value = str(name);
    if (!value) throw new ConfigError(`--${name} is required (or set ${SERVE_FLAGS[name].env})`);
    return readableFile(name, value);
  };
  // The serving pair first: with no flags at all, the first thing to say is --tls-cert.
  const tlsCert = required('tls-cert');
  const tlsKey = required('tls-key');
  const namespaces = namespaceSource(str('kubeconfig'), str('namespaces-file'), env, exists);
  const watchNodes = v['watch-nodes'] === true;
  if (watchNodes && namespaces.type === 'file') {
    throw new ConfigError(`--watch-nodes needs a cluster (--kubeconfig or in-cluster), but namespace labels come from a file: ${namespaces.reason}`);
  }
  const httpsPort = port('port', str('port')!);
  const metricsPort = port('metrics-port', str('metrics-port')!);
  if (metricsPort === httpsPort) {
    throw new ConfigError(`--metrics-port ${metricsPort} is also the HTTPS --port: give the metrics endpoint a port of its own`);
  }
  const clientCa = str('client-ca');
  const repair = str('repair')!;
  if (repair !== 'on' && repair !== 'off') {
    throw new ConfigError(`--repair ${JSON.stringify(repair)} is not a setting (allowed: on, off)`);
  }
  return {
    port: httpsPort,
    host: str('host')!,
    metricsPort,
    clientCa: clientCa ? readableFile('client-ca', clientCa) : undefined,
    tlsCert,
    tlsKey,
    namespaces,
    labelPrefix: labelPrefix(str('label-prefix')!),
    failClosed: v['fail-closed'] === true,
    logLevel: logLevel(str('log-level')!),
    watchNodes,
    repair: repair === 'on',
  };
}

export function serveUsage(): string {
  const lines = Object.entries(SERVE_FLAGS).map(([name, spec]: [string, FlagSpec]) => {
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    return `  --${name.padEnd(16)} ${spec.env.padEnd(24)} ${spec.help}${def}`;
  });
  return ['Usage: realip-webhook serve [flags]', '', '  flag               environment', ...lines].join('\n');
}
