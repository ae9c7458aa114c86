// Hop 5, L7: behind an ingress controller the app sees the controller's pod IP, and the client
// only in X-Forwarded-For, if the controller gets it and passes it on. explain knows
// ingress-nginx's ConfigMap; for any other controller the hop is "unknown".
import { INGRESS_NGINX } from './entry.js';
import type { Hop, Readable } from './hop.js';
import { nameOf, namespaceOf, type ConfigMap, type Service, type Workload } from './objects.js';

export interface L7Facts {
  controller: string | undefined;
  /** The controller's Service and the workloads of its namespace, to find its --configmap flag. */
  controllerService: Service;
  workloads: Readable<Workload[]>;
  /** The ConfigMap the flag names; undefined when the controller runs without one. */
  configMap: Readable<ConfigMap | undefined>;
  /** From L4 of the controller's Service. */
  l4Kept: boolean;
  proxyProtocol: boolean;
}

interface TemplateContainer {
  args?: string[];
}

const matchesSelector = (labels: Record<string, string> | undefined, selector: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The workload whose pod template the controller Service selects. */
export function controllerWorkload(service: Service, workloads: Workload[]): Workload | undefined {
  return workloads.find((w) => {
    const template = w.spec?.['template'] as { metadata?: { labels?: Record<string, string> } } | undefined;
    return w.kind !== 'ReplicaSet' && matchesSelector(template?.metadata?.labels, service.spec?.selector);
  });
}

/** namespace/name of ingress-nginx's --configmap flag on the controller workload, or undefined without one. */
export function nginxConfigMapRef(workload: Workload): { namespace: string; name: string } | undefined {
  const template = workload.spec?.['template'] as { spec?: { containers?: TemplateContainer[] } } | undefined;
  for (const c of template?.spec?.containers ?? []) {
    for (const arg of c.args ?? []) {
      // The Helm chart writes --configmap=$(POD_NAMESPACE)/NAME, which the kubelet expands.
      const value = /^--configmap=(.+)$/.exec(arg)?.[1]?.replace('$(POD_NAMESPACE)', namespaceOf(workload));
      if (!value) continue;
      const [ns, name] = value.includes('/') ? value.split('/', 2) : [namespaceOf(workload), value];
      return { namespace: ns!, name: name! };
    }
  }
  return undefined;
}

const KEYS = ['use-proxy-protocol', 'use-forwarded-headers', 'compute-full-forwarded-for'] as const;

export function l7Hop(facts: L7Facts): Hop {
  const hop = 'L7' as const;
  if (facts.controller !== INGRESS_NGINX) {
    return { hop, verdict: 'unknown', evidence: [`unknown (controller ${facts.controller ?? '(not found)'}: explain reads the configuration of ${INGRESS_NGINX} only)`] };
  }
  if (!facts.workloads.ok) return { hop, verdict: 'unknown', evidence: [`unknown (${facts.workloads.reason})`] };
  const workload = controllerWorkload(facts.controllerService, facts.workloads.value);
  if (!workload) return { hop, verdict: 'unknown', evidence: [`unknown (no Deployment or DaemonSet matches the selector of Service ${namespaceOf(facts.controllerService)}/${nameOf(facts.controllerService)})`] };
  if (!facts.configMap.ok) return { hop, verdict: 'unknown', evidence: [`unknown (${facts.configMap.reason})`] };
  const configMap = facts.configMap.value;
  const data = configMap?.data ?? {};
  const id = `${workload.kind?.toLowerCase()}/${nameOf(workload)}`;
  const cm = configMap ? `ConfigMap ${namespaceOf(configMap)}/${nameOf(configMap)}` : 'no --configmap (defaults)';
  const evidence = [`ingress-nginx ${id}, ${cm}: ${KEYS.map((k) => `${k}=${data[k] ?? '(unset)'}`).join(', ')}`];
  const on = (k: (typeof KEYS)[number]) => data[k] === 'true';
  const patch = (kv: string) =>
    configMap
      ? `kubectl patch configmap ${nameOf(configMap)} -n ${namespaceOf(configMap)} --type merge -p '{"data":{${kv}}}'`
      : `give ${id} a --configmap with ${kv}`;
  if (facts.proxyProtocol && !on('use-proxy-protocol')) {
    evidence.push('the load balancer sends a PROXY protocol header that nginx is not told to read: requests fail to parse');
    return { hop, verdict: 'lost', evidence, fix: patch('"use-proxy-protocol":"true"') };
  }
  if (!facts.proxyProtocol && on('use-proxy-protocol')) {
    evidence.push('use-proxy-protocol=true but no annotation says the load balancer sends PROXY protocol: unless it does, requests fail');
    return { hop, verdict: 'at risk', evidence, fix: 'enable PROXY protocol on the load balancer (see the cloud annotations in docs/explain.md), or set use-proxy-protocol=false' };
  }
  if (on('use-forwarded-headers')) {
    evidence.push('use-forwarded-headers=true: nginx trusts X-Forwarded-For from whoever connects; right only behind an L7 load balancer that sets it, and clients can forge it otherwise');
  }
  if (on('compute-full-forwarded-for')) evidence.push('compute-full-forwarded-for=true: X-Forwarded-For keeps the whole chain; the app must take the right entry');
  evidence.push(facts.l4Kept
    ? 'nginx passes the address it receives on in X-Forwarded-For and X-Real-IP'
    : 'nginx passes on the address it receives, which L4 already replaced');
  return { hop, verdict: 'kept', evidence };
}
