// The measurement behind docs/istio.md's table, shared by the Istio test (which asserts it) and
// `npm run demo:istio` (which prints it): Deployments and bare Pods created in namespaces that are
// opted in or not, under Pod Security baseline, in ambient mode, with classic and native
// sidecars, with Istio CNI or without; what Istio's own injector made of each Pod.
import type { Obj } from '../e2e/webhook-harness.js';
import { ENABLED, namespace } from '../datapath/cluster-with-webhook.js';
import { deployment, pod, type IstioLab } from './mesh-lab.js';

const TPROXY = { 'sidecar.istio.io/interceptionMode': 'TPROXY' };
const INJECTION = { 'istio-injection': 'enabled' };
export const OLD_KUBELET = '1.32.0';
const NEW_KUBELET = '1.37.2';
const SHIPPED_NAME = '00-realip-webhook';

const NS = {
  optedIn: 'opted-in',
  plain: 'plain',
  baseline: 'baseline',
  ambient: 'ambient',
} as const;

const NAMESPACES = [
  namespace(NS.optedIn, { ...INJECTION, ...ENABLED }),
  namespace(NS.plain, INJECTION),
  namespace(NS.baseline, { ...INJECTION, ...ENABLED, 'pod-security.kubernetes.io/enforce': 'baseline' }),
  // Ambient namespaces carry no istio-injection label: only Pods labelled sidecar.istio.io/inject=true get a sidecar.
  namespace(NS.ambient, { ...ENABLED, 'istio.io/dataplane-mode': 'ambient' }),
];

/** The injected sidecar as far as interception goes; undefined when Istio injected nothing. */
export interface Sidecar {
  /** istio-init (iptables set up in the Pod) or istio-validation (Istio CNI did it). */
  init: string;
  /** The init container's `-m` argument. */
  initMode: string;
  /** ISTIO_META_INTERCEPTION_MODE of istio-proxy. */
  proxyMode: string;
  /** native: istio-proxy is an init container with restartPolicy Always. */
  native: boolean;
  runAsUser: number | undefined;
  runAsNonRoot: boolean | undefined;
  capabilitiesAdded: string[];
}

export function sidecarOf(p: Obj): Sidecar | undefined {
  const inits = (p.spec.initContainers ?? []) as Obj[];
  const containers = p.spec.containers as Obj[];
  const nativeProxy = inits.find((c) => c.name === 'istio-proxy');
  const proxy = nativeProxy ?? containers.find((c) => c.name === 'istio-proxy');
  if (!proxy) return undefined;
  const init = inits.find((c) => c.name === 'istio-init' || c.name === 'istio-validation');
  const args = (init?.args ?? []) as string[];
  const security = (proxy.securityContext ?? {}) as Obj;
  return {
    init: init?.name ?? '(none)',
    initMode: args[args.indexOf('-m') + 1] ?? '(none)',
    proxyMode: ((proxy.env ?? []) as Obj[]).find((e) => e.name === 'ISTIO_META_INTERCEPTION_MODE')?.value ?? '(none)',
    native: nativeProxy !== undefined && nativeProxy.restartPolicy === 'Always',
    runAsUser: security.runAsUser,
    runAsNonRoot: security.runAsNonRoot,
    capabilitiesAdded: (security.capabilities?.add ?? []) as string[],
  };
}

export type Outcome =
  | { kind: 'pod'; pod: Obj; sidecar: Sidecar | undefined; warnings: string; template?: Obj }
  | { kind: 'rejected'; reason: string; warnings: string };

interface Row {
  namespace: string;
  created: string;
  mode: string;
  proxyUser: string;
  capabilities: string;
  sidecar: string;
  admitted: string;
}

export interface Scenario {
  key: string;
  namespace: string;
  created: string;
  outcome: Outcome;
}

async function fromDeployment(lab: IstioLab, ns: string, d: Obj): Promise<Outcome> {
  const { code, stderr } = await lab.create({ ...d, metadata: { ...d.metadata, namespace: ns } });
  if (code !== 0) throw new Error(`creating Deployment ${ns}/${d.metadata.name} failed: ${stderr}`);
  const template = (await lab.get(['deployment', d.metadata.name, '-n', ns])).spec.template as Obj;
  const result = await lab.podOf(ns, d.metadata.name);
  if ('rejected' in result) return { kind: 'rejected', reason: result.rejected, warnings: stderr };
  return { kind: 'pod', pod: result.pod, sidecar: sidecarOf(result.pod), warnings: stderr, template };
}

async function bare(lab: IstioLab, ns: string, p: Obj): Promise<Outcome> {
  const { code, stderr } = await lab.create({ ...p, metadata: { ...p.metadata, namespace: ns } });
  if (code !== 0) return { kind: 'rejected', reason: stderr.trim(), warnings: stderr };
  const stored = await lab.get(['pod', p.metadata.name, '-n', ns]);
  return { kind: 'pod', pod: stored, sidecar: sidecarOf(stored), warnings: stderr };
}

/**
 * Every scenario, in an order that needs each istiod setting once: classic sidecars (a kubelet
 * older than 1.33), then native ones, then Istio CNI. The lab starts with the OLD_KUBELET Node
 * and the injector without CNI.
 */
export async function whatIstioInjects(lab: IstioLab): Promise<Scenario[]> {
  const { create } = lab;
  const created = await create(...NAMESPACES);
  if (created.code !== 0) throw new Error(created.stderr);
  const out: Scenario[] = [];
  const add = (key: string, ns: string, how: string, outcome: Outcome) => out.push({ key, namespace: ns, created: how, outcome });

  add('optedIn', 'opted in', 'Deployment', await fromDeployment(lab, NS.optedIn, deployment('web')));
  add('plain', 'not opted in', 'Deployment', await fromDeployment(lab, NS.plain, deployment('web')));
  add('bare', 'opted in', 'bare Pod', await bare(lab, NS.optedIn, pod('bare')));
  add('userRedirect', 'opted in', 'Deployment, template says REDIRECT', await fromDeployment(lab, NS.optedIn, deployment('user-redirect', { annotations: { 'sidecar.istio.io/interceptionMode': 'REDIRECT' } })));
  add('ambient', 'ambient', 'Deployment', await fromDeployment(lab, NS.ambient, deployment('web')));
  add('ambientSidecar', 'ambient', 'Deployment, template asks for a sidecar', await fromDeployment(lab, NS.ambient, deployment('with-sidecar', { labels: { 'sidecar.istio.io/inject': 'true' } })));
  add('baselineNoCni', 'opted in, Pod Security baseline, no Istio CNI', 'bare Pod', await bare(lab, NS.baseline, pod('no-cni')));
  add('bareAfterIstio', 'opted in, webhook configuration named zz-realip-webhook', 'bare Pod', await withConfigurationNamed(lab, 'zz-realip-webhook', () => bare(lab, NS.optedIn, pod('bare-zz'))));

  add('nativeAnnotation', 'opted in', 'Deployment, template asks for native sidecar', await fromDeployment(lab, NS.optedIn, deployment('native-annotation', { annotations: { 'sidecar.istio.io/nativeSidecar': 'true' } })));
  await lab.useNode(NEW_KUBELET);
  add('nativeNode', `opted in, Node kubelet ${NEW_KUBELET}`, 'Deployment', await fromDeployment(lab, NS.optedIn, deployment('native-node')));

  await lab.useInjector('cni');
  add('cni', 'opted in, Istio CNI', 'Deployment', await fromDeployment(lab, NS.optedIn, deployment('cni')));
  add('baseline', 'opted in, Pod Security baseline, Istio CNI', 'Deployment', await fromDeployment(lab, NS.baseline, deployment('web')));
  add('baselineByHand', 'opted in, Pod Security baseline, Istio CNI', 'bare Pod, TPROXY written by hand', await bare(lab, NS.baseline, pod('by-hand', TPROXY)));
  return out;
}

/** Runs `fn` with the webhook's configuration registered under another name, then restores it. */
async function withConfigurationNamed<T>(lab: IstioLab, name: string, fn: () => Promise<T>): Promise<T> {
  const { cluster } = lab.control;
  const registered = await lab.get(['mutatingwebhookconfiguration', SHIPPED_NAME]);
  const named = (n: string) => JSON.stringify({ apiVersion: registered.apiVersion, kind: registered.kind, metadata: { name: n }, webhooks: registered.webhooks });
  await cluster.kubectl(['delete', 'mutatingwebhookconfiguration', SHIPPED_NAME]);
  await cluster.kubectl(['create', '-f', '-'], { stdin: named(name) });
  try {
    return await fn();
  } finally {
    await cluster.kubectl(['delete', 'mutatingwebhookconfiguration', name]);
    await cluster.kubectl(['create', '-f', '-'], { stdin: named(SHIPPED_NAME) });
  }
}

/** What Pod Security said, without the Pod's name: `non-default capabilities (container "istio-proxy" ...)`. */
export function podSecurityViolation(reason: string): string | undefined {
  return /violates PodSecurity "[^"]+": (.*)$/m.exec(reason)?.[1];
}

function row(s: Scenario): Row {
  const o = s.outcome;
  if (o.kind === 'rejected') {
    const admitted = `no: ${podSecurityViolation(o.reason) ?? o.reason}`;
    return { namespace: s.namespace, created: s.created, mode: '-', proxyUser: '-', capabilities: '-', sidecar: '-', admitted };
  }
  const c = o.sidecar;
  if (!c) return { namespace: s.namespace, created: s.created, mode: 'no sidecar', proxyUser: '-', capabilities: '-', sidecar: '-', admitted: 'yes' };
  const mode = c.initMode === c.proxyMode ? c.proxyMode : `${c.initMode} (init) / ${c.proxyMode} (proxy)`;
  return {
    namespace: s.namespace,
    created: s.created,
    mode,
    proxyUser: `${c.runAsUser ?? '-'}${c.runAsNonRoot === false ? ' (root allowed)' : ''}`,
    capabilities: c.capabilitiesAdded.join(', ') || 'none',
    sidecar: `${c.native ? 'native (init container)' : 'container'}, ${c.init}`,
    admitted: 'yes',
  };
}

export function markdownTable(scenarios: Scenario[]): string {
  const header = ['namespace', 'created as', 'interception', 'istio-proxy user', 'capabilities added to istio-proxy', 'sidecar', 'admitted'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of scenarios.map(row)) {
    lines.push(`| ${[r.namespace, r.created, r.mode, r.proxyUser, r.capabilities, r.sidecar, r.admitted].join(' | ')} |`);
  }
  return lines.join('\n');
}

/** The Sidecar fields that differ between the two interception modes, as Istio's template sets them (no CNI). */
export interface InterceptionFields {
  initMode: string;
  proxyMode: string;
  runAsUser: number | undefined;
  runAsNonRoot: boolean | undefined;
  netAdmin: boolean;
}

export function interceptionFields(s: Sidecar): InterceptionFields {
  const { initMode, proxyMode, runAsUser, runAsNonRoot } = s;
  return { initMode, proxyMode, runAsUser, runAsNonRoot, netAdmin: s.capabilitiesAdded.includes('NET_ADMIN') };
}

export const EXPECTED: Record<'TPROXY' | 'REDIRECT', InterceptionFields> = {
  TPROXY: { initMode: 'TPROXY', proxyMode: 'TPROXY', runAsUser: 0, runAsNonRoot: false, netAdmin: true },
  REDIRECT: { initMode: 'REDIRECT', proxyMode: 'REDIRECT', runAsUser: 1337, runAsNonRoot: true, netAdmin: false },
};
