// The measurement behind the "what the pod sees" table (docs/testing.md; short in the README),
// shared by the datapath test (which asserts it) and `npm run demo:datapath` (which prints it):
// Services written without externalTrafficPolicy, in a namespace that is opted in, one that is
// not, and one that opts in only after its Service exists and is then fixed with
// `realip-webhook audit --fix services`.
import { getJson, type Obj } from '../e2e/webhook-harness.js';
import { ENABLED, namespace } from './cluster-with-webhook.js';
import { NODE_NAMES, endpointSlice, pod, service, type HttpAnswer, type Lab, type NodeName } from './lab.js';

export type ServiceType = 'NodePort' | 'LoadBalancer';

export interface Row {
  service: ServiceType;
  namespace: string;
  /** spec.externalTrafficPolicy as stored by the API server. */
  policy: string;
  node: NodeName;
  /** The source address the pod saw, or why it saw nothing. */
  podSees: string;
  /** The answer of the Service's healthCheckNodePort on that node; "-" when it has none. */
  healthCheck: string;
  /** The last line of `realip-webhook explain` for this Service at the time, and its exit status. */
  explainSays: string;
  explainExit: number | null;
}

export interface Measurement {
  rows: Row[];
  /** kubectl's stderr when the Services were created, by namespace/name. */
  createWarnings: Record<string, string>;
  audit: { code: number | null; report: Obj; stderr: string };
}

export const NS = { optedIn: 'opted-in', plain: 'plain', late: 'late' } as const;
export const NAMESPACE_LABEL = {
  optedIn: 'opted in',
  plain: 'not opted in',
  lateBefore: 'opted in after the Service was created',
  lateFixed: 'same, after `audit --fix services`',
} as const;

const SERVICES: [ns: string, name: string, type: ServiceType][] = [
  [NS.optedIn, 'web-nodeport', 'NodePort'],
  [NS.optedIn, 'web-lb', 'LoadBalancer'],
  [NS.plain, 'web-nodeport', 'NodePort'],
  [NS.plain, 'web-lb', 'LoadBalancer'],
  [NS.late, 'web-lb', 'LoadBalancer'],
];

function describeAnswer(a: HttpAnswer): string {
  if ('error' in a) return a.error === 'timeout' ? 'nothing (dropped)' : `error: ${a.error}`;
  return a.status === 200 ? a.body : `HTTP ${a.status}: ${a.body}`;
}

function describeHealthCheck(a: HttpAnswer): string {
  if ('error' in a) return `error: ${a.error}`;
  try {
    return `${a.status}, localEndpoints ${(JSON.parse(a.body) as Obj).localEndpoints}`;
  } catch {
    return `${a.status}: ${a.body}`;
  }
}

async function observe(lab: Lab, ns: string, name: string, namespaceLabel: string): Promise<Row[]> {
  const svc = await lab.waitProgrammed(ns, name);
  const nodePort = svc.spec.ports[0].nodePort as number;
  const hc = svc.spec.healthCheckNodePort as number | undefined;
  const explained = await lab.cli('explain', ['service', name, '-n', ns, '-o', 'json']);
  let explainSays: string;
  try {
    explainSays = (JSON.parse(explained.stdout) as Obj).verdict as string;
  } catch {
    throw new Error(`explain printed no JSON (exit ${explained.code}): ${explained.stdout}${explained.stderr}`);
  }
  return Promise.all(
    NODE_NAMES.map(async (node) => ({
      service: svc.spec.type as ServiceType,
      namespace: namespaceLabel,
      policy: svc.spec.externalTrafficPolicy as string,
      node,
      podSees: describeAnswer(await lab.get(node, nodePort)),
      healthCheck: hc ? describeHealthCheck(await lab.get(node, hc)) : '-',
      explainSays,
      explainExit: explained.code,
    })),
  );
}

export async function whatThePodSees(lab: Lab): Promise<Measurement> {
  await lab.create(namespace(NS.optedIn, ENABLED), namespace(NS.plain), namespace(NS.late));
  await lab.waitUntilMutating(NS.optedIn);

  const createWarnings: Record<string, string> = {};
  for (const [ns, name, type] of SERVICES) {
    await lab.create(pod(name, ns));
    createWarnings[`${ns}/${name}`] = await lab.create(endpointSlice(name, ns), service(name, ns, type));
  }

  const rows: Row[] = [];
  const labelOf: Record<string, string> = { [NS.optedIn]: NAMESPACE_LABEL.optedIn, [NS.plain]: NAMESPACE_LABEL.plain, [NS.late]: NAMESPACE_LABEL.lateBefore };
  for (const [ns, name] of SERVICES) rows.push(...(await observe(lab, ns, name, labelOf[ns]!)));

  await lab.cluster.kubectl(['label', 'namespace', NS.late, ...Object.entries(ENABLED).map(([k, v]) => `${k}=${v}`)]);
  const fixed = await lab.cli('audit', ['-n', NS.late, '--fix', 'services', '-o', 'json']);
  let report: Obj;
  try {
    report = JSON.parse(fixed.stdout) as Obj;
  } catch {
    throw new Error(`audit --fix services printed no JSON (exit ${fixed.code}): ${fixed.stdout}${fixed.stderr}`);
  }
  // Read back first: the fix must be stored before kube-proxy can act on it.
  const stored = await getJson(lab.cluster, ['service', 'web-lb', '-n', NS.late]);
  if (stored.spec.externalTrafficPolicy === 'Local') rows.push(...(await observe(lab, NS.late, 'web-lb', NAMESPACE_LABEL.lateFixed)));

  return { rows, createWarnings, audit: { code: fixed.code, report, stderr: fixed.stderr } };
}

/** The rows as a Markdown table, as docs/testing.md shows it. */
export function markdownTable(rows: Row[]): string {
  const header = ['Service (no externalTrafficPolicy written)', 'namespace', 'policy stored', 'client → node', 'the pod sees', 'health check on that node'];
  const nodeLabel: Record<NodeName, string> = { node1: 'node1 (runs the pod)', node2: 'node2 (no pod)' };
  const lines = rows.map((r) => [r.service, r.namespace, r.policy, nodeLabel[r.node], r.podSees, r.healthCheck]);
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [row(header), row(header.map(() => '---')), ...lines.map(row)].join('\n');
}
