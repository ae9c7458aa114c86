// In its default REDIRECT mode the Istio sidecar connects to the app from 127.0.0.6; TPROXY
// keeps the client's address. Istio reads the annotation only when a Pod is created, so it
// goes on pod templates.
import { skipped, WARNING_PREFIX, type FeatureResult } from './feature.js';
import { addOperation } from './json-patch.js';
import type { KubeObject, PodTemplate } from './objects.js';
import type { Labels, Resolved } from './settings.js';

export const INTERCEPTION_ANNOTATION = 'sidecar.istio.io/interceptionMode';
export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
// TPROXY gives the istio-proxy container NET_ADMIN, which these Pod Security levels reject.
export const LEVELS_WITHOUT_NET_ADMIN: readonly string[] = ['baseline', 'restricted'];

/** The Pod Security level the namespace enforces, when it is one that forbids NET_ADMIN. */
function levelForbiddingNetAdmin(namespaceLabels: Labels): string | undefined {
  return LEVELS_WITHOUT_NET_ADMIN.find((forbidding) => forbidding === namespaceLabels[POD_SECURITY_ENFORCE_LABEL]);
}

function podSecurityReason(level: string): string {
  return `namespace enforces pod-security ${level}`;
}

export function podSecuritySkipWarning(level: string): string {
  return `${WARNING_PREFIX}TPROXY not set: ${podSecurityReason(level)} and the Istio proxy would need NET_ADMIN`;
}

export const TPROXY_SET_WARNING = `${WARNING_PREFIX}set ${INTERCEPTION_ANNOTATION}=TPROXY so the Istio sidecar keeps the client IP`;

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
export const AMBIENT_MODE = 'ambient';
export const SIDECAR_INJECT = 'sidecar.istio.io/inject';

/**
 * Ambient mode has no sidecar to intercept with: ztunnel keeps the client's address by itself.
 * A workload that asks for a sidecar anyway (sidecar.istio.io/inject: "true", as a label or as
 * the older annotation) gets one, and then TPROXY matters again.
 */
export function whyAmbientNeedsNoTproxy(namespaceLabels: Labels, template: PodTemplate): string | undefined {
  if (namespaceLabels[DATAPLANE_MODE_LABEL] !== AMBIENT_MODE) return undefined;
  const { labels, annotations } = template.metadata ?? {};
  if (labels?.[SIDECAR_INJECT] === 'true' || annotations?.[SIDECAR_INJECT] === 'true') return undefined;
  return `namespace is in Istio ambient mode (${DATAPLANE_MODE_LABEL}=ambient): no sidecar, ztunnel keeps the client address`;
}

export function istioInterception(
  object: KubeObject,
  templatePath: readonly string[],
  template: PodTemplate,
  setting: Resolved<'istio-interception'>,
  namespaceLabels: Labels,
): FeatureResult {
  if (!setting.valid) return skipped('invalid istio-interception setting', setting.warning);
  if (setting.value === 'none') return skipped(`${setting.from}=none`);
  const explicit = template.metadata?.annotations?.[INTERCEPTION_ANNOTATION];
  if (explicit !== undefined) return skipped(`explicit ${INTERCEPTION_ANNOTATION}=${explicit} kept`);
  const ambient = whyAmbientNeedsNoTproxy(namespaceLabels, template);
  if (ambient) return skipped(ambient);
  const level = levelForbiddingNetAdmin(namespaceLabels);
  if (level !== undefined) return skipped(podSecurityReason(level), podSecuritySkipWarning(level));
  return {
    applied: true,
    ops: [addOperation(object, [...templatePath, 'metadata', 'annotations', INTERCEPTION_ANNOTATION], 'TPROXY')],
    change: 'istio-interception=TPROXY',
    warning: TPROXY_SET_WARNING,
  };
}
