// Hop 3, spread: under externalTrafficPolicy Local only nodes with a ready endpoint pass the load
// balancer's health check. Replicas piled on one node (or zone) leave it one backend.
import { AUDITED_KINDS, driftOf, type NamespaceInfo } from '../commands/audit-scan.js';
import { readyEndpoints, topOwner, zoneOf } from './endpoints.js';
import type { Hop, Readable } from './hop.js';
import { nameOf, namespaceOf, type EndpointSlice, type Node, type Pod, type Service, type Workload } from './objects.js';

export interface SpreadFacts {
  service: Service;
  /** From L4: node ports under Local decide the path, so spread matters. */
  viaLocalNodePorts: boolean;
  slices: Readable<EndpointSlice[]>;
  nodes: Readable<Node[]>;
  pods: Readable<Pod[]>;
  workloads: Readable<Workload[]>;
  namespace: Readable<NamespaceInfo>;
  labelPrefix: string;
}

const schedulable = (n: Node) =>
  n.spec?.unschedulable !== true && (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

function hasAntiAffinity(workload: Workload): boolean {
  const template = (workload.spec?.['template'] ?? {}) as { spec?: { affinity?: { podAntiAffinity?: object | null } | null } };
  return Boolean(template.spec?.affinity?.podAntiAffinity);
}

/** The workload behind the endpoints, whether it carries anti-affinity, and what would spread it. */
function workloadNote(facts: SpreadFacts, podName: string | undefined): { evidence: string; fix: string } {
  const ns = namespaceOf(facts.service);
  const generic = { evidence: 'the workload behind them is unknown', fix: `spread the replicas over nodes (pod anti-affinity on kubernetes.io/hostname), or label namespace ${ns} ${facts.labelPrefix}/inject=enabled and recreate them` };
  if (!podName) return generic;
  if (!facts.pods.ok) return { ...generic, evidence: `the workload behind them is unknown (${facts.pods.reason})` };
  const pod = facts.pods.value.find((p) => nameOf(p) === podName);
  if (!pod) return generic;
  const owner = topOwner(pod, facts.workloads);
  if (!owner.ok) return { ...generic, evidence: `the workload behind them is unknown (${owner.reason})` };
  if (!owner.value) return { ...generic, evidence: `the endpoints are bare Pods (${podName}): nothing spreads them` };
  const workload = owner.value;
  const id = `${workload.kind!.toLowerCase()}/${nameOf(workload)}`;
  const anti = hasAntiAffinity(workload);
  const evidence = `workload ${id} ${anti ? 'has' : 'has no'} pod anti-affinity`;
  const kind = AUDITED_KINDS.find((k) => k.kind === workload.kind);
  const drift = kind && facts.namespace.ok ? driftOf(workload, { ...kind, controlledBy: undefined }, workload.apiVersion ?? '', facts.namespace.value, facts.labelPrefix) : undefined;
  if (drift?.changes.some((c) => c.startsWith('anti-affinity='))) {
    return { evidence: `${evidence}; the webhook would add it today (created before the opt-in)`, fix: `kubectl rollout restart ${id} -n ${ns}` };
  }
  if (anti) {
    return { evidence, fix: `its anti-affinity did not spread the replicas: add schedulable nodes, or label namespace ${ns} ${facts.labelPrefix}/anti-affinity=required` };
  }
  return { evidence, fix: `label namespace ${ns} ${facts.labelPrefix}/inject=enabled, then kubectl rollout restart ${id} -n ${ns}` };
}

export function spreadHop(facts: SpreadFacts): Hop {
  const hop = 'spread' as const;
  if (!facts.slices.ok) return { hop, verdict: 'unknown', evidence: [`unknown (${facts.slices.reason})`] };
  const ready = readyEndpoints(facts.slices.value);
  const evidence: string[] = [];
  if (ready.length === 0) {
    return { hop, verdict: 'at risk', evidence: ['no ready endpoint: nothing answers, on any node'], fix: 'make the Pods ready (kubectl get pods, kubectl describe)' };
  }
  const onNodes = new Set(ready.flatMap((e) => (e.node ? [e.node] : [])));
  const noNode = ready.filter((e) => !e.node).length;
  evidence.push(`${ready.length} ready endpoint(s) on ${onNodes.size} node(s)${onNodes.size > 0 ? ` (${[...onNodes].sort().join(', ')})` : ''}`);
  if (noNode > 0) evidence.push(`${noNode} ready endpoint(s) name no node (EndpointSlices written by hand?)`);
  if (!facts.viaLocalNodePorts) {
    evidence.push('the load balancer does not pick nodes by their endpoints here (not Local node ports): spread does not decide the address');
    return { hop, verdict: 'kept', evidence };
  }
  if (onNodes.size === 0) return { hop, verdict: 'unknown', evidence: [...evidence, 'unknown (no endpoint names its node)'] };
  if (!facts.nodes.ok) return { hop, verdict: 'unknown', evidence: [...evidence, `unknown (${facts.nodes.reason})`] };
  const nodes = facts.nodes.value.filter(schedulable);
  const zones = new Set(nodes.flatMap((n) => zoneOf(n.metadata?.labels) ?? []));
  const endpointZones = new Set(
    ready.flatMap((e) => e.zone ?? zoneOf(facts.nodes.ok ? facts.nodes.value.find((n) => nameOf(n) === e.node)?.metadata?.labels : undefined) ?? []),
  );
  evidence.push(`${nodes.length} schedulable ready node(s) in ${zones.size} zone(s)`);
  const firstPod = ready.find((e) => e.pod)?.pod;
  if (onNodes.size === 1 && nodes.length > 1) {
    const note = workloadNote(facts, firstPod);
    return {
      hop,
      verdict: 'at risk',
      evidence: [...evidence, note.evidence, `every ready endpoint is on node ${[...onNodes][0]}: ${
        facts.service.spec?.type === 'LoadBalancer'
          ? `the load balancer has one backend, the other ${nodes.length - 1} node(s) fail its health check`
          : `clients of the other ${nodes.length - 1} node(s)' node port are dropped`
      }`],
      fix: note.fix,
    };
  }
  if (endpointZones.size === 1 && zones.size > 1) {
    const note = workloadNote(facts, firstPod);
    return {
      hop,
      verdict: 'at risk',
      evidence: [...evidence, note.evidence, `every ready endpoint is in zone ${[...endpointZones][0]}: one zone's outage takes every backend`],
      fix: note.fix,
    };
  }
  return { hop, verdict: 'kept', evidence };
}
