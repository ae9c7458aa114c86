// Hop 2, L4: what the load balancer and kube-proxy do to the source address on the way into the
// entry Service. The reasons a Service is still Cluster come from the webhook's own rules: the
// opt-in switch, the external-traffic-policy setting, and audit's drift (created before the opt-in).
import { AUDITED_KINDS, driftOf, type NamespaceInfo } from '../commands/audit-scan.js';
import { resolveSetting, whyNotInjected, type SettingSource } from '../mutation/settings.js';
import { cloudAnnotationsOf } from './cloud-annotations.js';
import { SEES, type Hop, type Readable } from './hop.js';
import { nameOf, namespaceOf, ref, type Service } from './objects.js';

export interface L4Facts {
  service: Service;
  namespace: Readable<NamespaceInfo>;
  labelPrefix: string;
}

export interface L4Result {
  hop: Hop;
  /** The LB sends a PROXY protocol header: the next reader must expect it. */
  proxyProtocol: boolean;
  /** Node ports and externalTrafficPolicy: Local decide the path, so the spread of endpoints over nodes matters. */
  viaLocalNodePorts: boolean;
}

const SERVICE_KIND = AUDITED_KINDS.find((k) => k.kind === 'Service')!;

/** Why a NodePort or LoadBalancer Service is Cluster, and the command that makes it Local. */
function whyCluster(facts: L4Facts): { why: string; fix: string } {
  const { service, labelPrefix } = facts;
  const ns = namespaceOf(service);
  const name = nameOf(service);
  const auditFix = `realip-webhook audit -n ${ns} --fix services`;
  if (!facts.namespace.ok) {
    return { why: `why unknown (${facts.namespace.reason})`, fix: `set spec.externalTrafficPolicy: Local on Service ${ref(service)}` };
  }
  const namespace = facts.namespace.value;
  const annotations: SettingSource = { where: 'annotation on the Service', values: service.metadata?.annotations };
  const notInjected = whyNotInjected(labelPrefix, namespace.labels, [annotations]);
  const injectKey = `${labelPrefix}/inject`;
  if (notInjected) {
    const fix = service.metadata?.annotations?.[injectKey] !== undefined && namespace.labels[injectKey] === 'enabled'
      ? `kubectl annotate service ${name} -n ${ns} ${injectKey}- && ${auditFix}`
      : `kubectl label namespace ${ns} ${injectKey}=enabled --overwrite && ${auditFix}`;
    return { why: `the webhook leaves it alone: ${notInjected.skip}`, fix };
  }
  const setting = resolveSetting(labelPrefix, 'external-traffic-policy', [annotations, { where: 'namespace label', values: namespace.labels }]);
  const key = `${labelPrefix}/external-traffic-policy`;
  if (!setting.valid) return { why: `the webhook leaves it alone: ${setting.warning}`, fix: `correct ${key}, then ${auditFix}` };
  if (setting.value === 'Cluster') {
    const fix = setting.from.startsWith('annotation')
      ? `kubectl annotate service ${name} -n ${ns} ${key}- && ${auditFix}`
      : `kubectl label namespace ${ns} ${key}- && ${auditFix}`;
    return { why: `opted out: ${setting.from}=Cluster`, fix };
  }
  if (driftOf(service, SERVICE_KIND, 'v1', namespace, labelPrefix)) {
    return { why: `the Service was created before the opt-in of namespace ${ns}, or while the webhook was down: the webhook would set Local today`, fix: auditFix };
  }
  return { why: 'the webhook would not change it', fix: `set spec.externalTrafficPolicy: Local on Service ${ref(service)}` };
}

export function l4Hop(facts: L4Facts): L4Result {
  const { service } = facts;
  const spec = service.spec ?? {};
  const policy = spec.externalTrafficPolicy ?? 'Cluster';
  const evidence = [`Service ${ref(service)}: type ${spec.type ?? 'ClusterIP'}, externalTrafficPolicy ${policy}`];
  const cloud = cloudAnnotationsOf(service.metadata?.annotations);
  for (const { row, value } of cloud) evidence.push(`${row.cloud}: ${row.key}=${value} (${row.effect.kind})`);
  const proxyProtocol = cloud.some((c) => c.row.effect.kind === 'proxy-protocol');
  const preserve = cloud.some((c) => c.row.effect.kind === 'preserve-client-ip');
  const direct = cloud.find((c) => c.row.effect.kind === 'direct-to-pod');
  const result = (hop: Omit<Hop, 'hop'>, viaLocalNodePorts = false): L4Result => ({ hop: { hop: 'L4', ...hop }, proxyProtocol, viaLocalNodePorts });

  if (direct && direct.row.effect.kind === 'direct-to-pod') {
    evidence.push(`the load balancer sends to pod IPs, not node ports: externalTrafficPolicy ${policy} does not matter`);
    if (direct.row.effect.keepsClientIp === 'yes' || preserve) return result({ verdict: 'kept', evidence });
    if (proxyProtocol) {
      evidence.push('the client address travels in the PROXY protocol header');
      return result({ verdict: 'kept', evidence });
    }
    evidence.push(`${direct.row.cloud} IP targets over TCP do not preserve the client address by default: the pod sees the load balancer's address`);
    return result({
      verdict: 'lost',
      evidence,
      sees: SEES.loadBalancer,
      fix: `kubectl annotate service ${nameOf(service)} -n ${namespaceOf(service)} service.beta.kubernetes.io/aws-load-balancer-target-group-attributes=preserve_client_ip.enabled=true`,
    });
  }
  if (policy === 'Local') {
    if (spec.healthCheckNodePort) {
      evidence.push(`healthCheckNodePort ${spec.healthCheckNodePort}: nodes without a ready endpoint answer 503 and the load balancer takes them out`);
    }
    evidence.push('kube-proxy delivers only to endpoints on the receiving node, without SNAT');
    return result({ verdict: 'kept', evidence }, true);
  }
  if (proxyProtocol) {
    evidence.push('kube-proxy SNATs to a node IP, but the client address travels in the PROXY protocol header');
    return result({ verdict: 'kept', evidence });
  }
  const { why, fix } = whyCluster(facts);
  evidence.push('kube-proxy SNATs to the receiving node\'s IP and may forward to another node', why);
  return result({ verdict: 'lost', evidence, sees: SEES.node, fix });
}
