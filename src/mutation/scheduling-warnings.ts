// Warnings about settings that leave pods Pending, stall a rollout, or drop traffic. They change
// nothing. The node-aware ones need counts from the node watch (serve --watch-nodes); without
// counts they are absent, never guessed.
import { TOPOLOGY_KEYS } from './anti-affinity.js';
import { whyTypeNeedsNoPolicy } from './external-traffic-policy.js';
import { WARNING_PREFIX } from './feature.js';
import type { KubeObject, LabelSelector, PodTemplate } from './objects.js';
import type { Labels } from './settings.js';

/** Schedulable nodes (Ready, not cordoned) and the distinct zones among them. */
export interface NodeCounts {
  schedulable: number;
  zones: number;
}

/** What a topology key of ours spreads over, and how many of those the cluster has. */
const DOMAINS = new Map<string, { one: string; unit: string; count: (nodes: NodeCounts) => number }>([
  [TOPOLOGY_KEYS.hostname, { one: 'node', unit: 'schedulable nodes', count: (nodes) => nodes.schedulable }],
  [TOPOLOGY_KEYS.zone, { one: 'zone', unit: 'zones', count: (nodes) => nodes.zones }],
]);

// The API server's defaults for a Deployment's RollingUpdate strategy.
const DEFAULT_MAX_SURGE = '25%';
const DEFAULT_MAX_UNAVAILABLE = '25%';

interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

/** Whether a label selector selects a pod with these labels (matchLabels and matchExpressions). */
export function selectorMatches(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return false;
  const pairs = Object.entries(selector.matchLabels ?? {});
  const requirements = (selector.matchExpressions ?? []) as Requirement[];
  if (pairs.length === 0 && requirements.length === 0) return false;
  return (
    pairs.every(([k, v]) => labels[k] === v) &&
    // Stryker disable next-line ArrayDeclaration: no label of a pod has the mutant's value
    requirements.every(({ key, operator, values = [] }) => {
      const value = labels[key];
      const listed = values.some((v) => v === value);
      switch (operator) {
        case 'In':
          return listed;
        case 'NotIn':
          return !listed;
        case 'Exists':
          return value !== undefined;
        case 'DoesNotExist':
          return value === undefined;
      }
      // Gt and Lt belong to node selectors: in a label selector they, and any other, select nothing.
      return false;
    })
  );
}

/**
 * The topology keys of required anti-affinity terms that select the workload's own pods, so that
 * at most one replica fits per node (or zone): the template's terms plus the one being added.
 */
function ownRequiredKeys(template: PodTemplate, added: string | undefined): Set<string> {
  const labels = template.metadata?.labels ?? {};
  // Stryker disable next-line ArrayDeclaration: a string in place of a term has no topologyKey and is filtered out
  const terms = template.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  const keys = new Set(terms.filter((t) => t.topologyKey && selectorMatches(t.labelSelector, labels)).map((t) => t.topologyKey!));
  // Stryker disable next-line ConditionalExpression: an undefined key has no domain and is passed over
  if (added) keys.add(added);
  return keys;
}

/** A maxSurge or maxUnavailable value resolved against replicas; undefined when it cannot be read. */
export function resolveIntOrPercent(value: unknown, replicas: number, roundUp: boolean): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const percent = typeof value === 'string' ? /^(\d+)%$/.exec(value)?.[1] : undefined;
  if (percent === undefined) return undefined;
  const exact = (replicas * Number(percent)) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/**
 * A Deployment whose required anti-affinity fills every node has nowhere to put a surge pod; the
 * rollout only moves on if it may first take an old pod down (maxUnavailable resolves to >= 1).
 */
function rollingUpdateStalls(object: KubeObject, replicas: number): string | undefined {
  if (object.kind !== 'Deployment') return undefined;
  const strategy = object.spec?.['strategy'] as
    | { type?: string; rollingUpdate?: { maxSurge?: unknown; maxUnavailable?: unknown } }
    | undefined;
  if ((strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') return undefined;
  const rawSurge = strategy?.rollingUpdate?.maxSurge ?? DEFAULT_MAX_SURGE;
  const surge = resolveIntOrPercent(rawSurge, replicas, true);
  const unavailable = resolveIntOrPercent(strategy?.rollingUpdate?.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE, replicas, false);
  // An unreadable maxSurge counts as none: no warning is guessed. With both at 0 the controller
  // takes one pod down first, so that rollout moves too.
  return (surge ?? 0) > 0 && unavailable === 0 ? String(rawSurge) : undefined;
}

/** Pending pods and stalled rollouts under required anti-affinity, judged against the node counts. */
export function requiredSpreadWarnings(
  object: KubeObject,
  template: PodTemplate,
  addedRequiredKey: string | undefined,
  nodes: NodeCounts | undefined,
): string[] {
  if (!nodes) return [];
  // Stryker disable next-line OptionalChaining: a workload with a pod template has a spec
  const replicas = typeof object.spec?.['replicas'] === 'number' ? (object.spec['replicas'] as number) : 1;
  if (replicas < 1) return [];
  const warnings: string[] = [];
  for (const key of ownRequiredKeys(template, addedRequiredKey)) {
    const domain = DOMAINS.get(key);
    // Another key (a rack, a region) has no count here, and none is guessed.
    if (!domain) continue;
    const capacity = domain.count(nodes);
    // No zone labels at all: the scheduler does not spread by zone, so nothing to warn about.
    if (key === TOPOLOGY_KEYS.zone && capacity === 0) continue;
    const { one, unit } = domain;
    if (replicas > capacity) {
      warnings.push(
        `${WARNING_PREFIX}required anti-affinity on ${key} fits 1 pod per ${one}, but replicas=${replicas} > ${capacity} ${unit}: ${replicas - capacity} pod(s) will stay Pending`,
      );
    } else if (replicas === capacity) {
      const surge = rollingUpdateStalls(object, replicas);
      if (surge !== undefined) {
        warnings.push(
          `${WARNING_PREFIX}required anti-affinity on ${key} with replicas=${replicas} on ${capacity} ${unit} and maxSurge=${surge}: a rollout will deadlock; set maxSurge: 0 and maxUnavailable: 1`,
        );
      }
    }
  }
  return warnings;
}

/**
 * With externalTrafficPolicy Local, a node without a local pod drops the Service's traffic; a
 * namespace that turned anti-affinity off lets replicas pile onto few nodes.
 */
export function localWithoutSpreadWarning(
  service: KubeObject,
  policyApplied: boolean,
  labelPrefix: string,
  namespaceLabels: Labels,
): string | undefined {
  const key = `${labelPrefix}/anti-affinity`;
  if (namespaceLabels[key] !== 'none' || whyTypeNeedsNoPolicy(service)) return undefined;
  // Stryker disable next-line OptionalChaining: a Service without spec is a ClusterIP, returned above
  if (!policyApplied && service.spec?.['externalTrafficPolicy'] !== 'Local') return undefined;
  return `${WARNING_PREFIX}externalTrafficPolicy=Local but namespace label ${key}=none: replicas may share nodes, and nodes with no local pod drop this Service's traffic`;
}
