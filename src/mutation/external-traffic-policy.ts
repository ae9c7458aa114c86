// kube-proxy SNATs traffic that enters a NodePort or LoadBalancer Service under the default
// policy Cluster; Local keeps the client's source IP.
import { skipped, WARNING_PREFIX, type FeatureResult } from './feature.js';
import { addOperation } from './json-patch.js';
import type { KubeObject } from './objects.js';
import type { Resolved } from './settings.js';

/** Why the Service's type never needs the policy, or undefined when it does. */
export function whyTypeNeedsNoPolicy(service: KubeObject): string | undefined {
  const type = (service.spec?.['type'] as string | undefined) ?? 'ClusterIP';
  if (type === 'NodePort' || type === 'LoadBalancer') return undefined;
  return `Service type ${type} is not NodePort or LoadBalancer`;
}

export function externalTrafficPolicy(
  service: KubeObject,
  setting: Resolved<'external-traffic-policy'>,
): FeatureResult {
  const notNeeded = whyTypeNeedsNoPolicy(service);
  if (notNeeded) return skipped(notNeeded);
  if (!setting.valid) return skipped('invalid external-traffic-policy setting', setting.warning);
  if (setting.value === 'Cluster') return skipped(`${setting.from}=Cluster`);
  // Stryker disable next-line OptionalChaining: a Service without spec is a ClusterIP, skipped above
  if (service.spec?.['externalTrafficPolicy'] === 'Local') return skipped('externalTrafficPolicy is already Local');
  // The API server allocates healthCheckNodePort for a LoadBalancer once the policy is Local:
  // it is never written here.
  return {
    applied: true,
    ops: [addOperation(service, ['spec', 'externalTrafficPolicy'], 'Local')],
    change: 'external-traffic-policy=Local',
    warning: `${WARNING_PREFIX}set spec.externalTrafficPolicy=Local so pods see the client source IP`,
  };
}
