// With externalTrafficPolicy Local a node without a ready local pod drops the traffic, so
// replicas are spread over nodes (or zones) with pod anti-affinity on the workload's own selector.
import { skipped, WARNING_PREFIX, type FeatureResult } from './feature.js';
import { addOperation } from './json-patch.js';
import type { KubeObject, LabelSelector, PodAffinityTerm, PodTemplate } from './objects.js';
import type { Resolved } from './settings.js';

export const TOPOLOGY_KEYS = {
  hostname: 'kubernetes.io/hostname',
  zone: 'topology.kubernetes.io/zone',
} as const;

export const PREFERRED_WEIGHT = 100;

/** The selector's matchLabels and matchExpressions, or undefined when it selects nothing specific. */
export function selectorForTerm(selector: LabelSelector | undefined): LabelSelector | undefined {
  const term: LabelSelector = {};
  if (selector?.matchLabels && Object.keys(selector.matchLabels).length > 0) term.matchLabels = selector.matchLabels;
  if (selector?.matchExpressions && selector.matchExpressions.length > 0) term.matchExpressions = selector.matchExpressions;
  return term.matchLabels || term.matchExpressions ? term : undefined;
}

/** Whether the template already has a podAntiAffinity term for topologyKey, required or preferred. */
function hasTermFor(template: PodTemplate, topologyKey: string): boolean {
  const anti = template.spec?.affinity?.podAntiAffinity;
  const required = anti?.requiredDuringSchedulingIgnoredDuringExecution?.some((t) => t.topologyKey === topologyKey);
  const preferred = anti?.preferredDuringSchedulingIgnoredDuringExecution?.some(
    (p) => p.podAffinityTerm?.topologyKey === topologyKey,
  );
  return required === true || preferred === true;
}

export function antiAffinity(
  object: KubeObject,
  templatePath: readonly string[],
  template: PodTemplate,
  mode: Resolved<'anti-affinity'>,
  topology: Resolved<'anti-affinity-topology'>,
): FeatureResult {
  if (!mode.valid) return skipped('invalid anti-affinity setting', mode.warning);
  if (mode.value === 'none') return skipped(`${mode.from}=none`);
  if (!topology.valid) return skipped('invalid anti-affinity-topology setting', topology.warning);
  const labelSelector = selectorForTerm(object.spec?.['selector'] as LabelSelector | undefined);
  if (!labelSelector) return skipped('workload has no spec.selector to spread by');
  const topologyKey = TOPOLOGY_KEYS[topology.value];
  if (hasTermFor(template, topologyKey)) {
    return skipped(`pod template already has an anti-affinity term for ${topologyKey}`);
  }

  const term: PodAffinityTerm = { labelSelector, topologyKey };
  const path = [...templatePath, 'spec', 'affinity', 'podAntiAffinity'];
  const op =
    mode.value === 'required'
      ? addOperation(object, [...path, 'requiredDuringSchedulingIgnoredDuringExecution', '-'], term)
      : addOperation(object, [...path, 'preferredDuringSchedulingIgnoredDuringExecution', '-'], {
          weight: PREFERRED_WEIGHT,
          podAffinityTerm: term,
        });
  return {
    applied: true,
    ops: [op],
    change: `anti-affinity=${mode.value}/${topology.value}`,
    warning: `${WARNING_PREFIX}added ${mode.value} pod anti-affinity on ${topologyKey} so replicas spread out`,
  };
}
