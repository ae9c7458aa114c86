// In its default REDIRECT mode the Istio sidecar connects to the app from 127.0.0.6; TPROXY
// keeps the client's address. Istio reads the annotation only when a Pod is created, so it
// goes on pod templates.
import { skipped, WARNING_PREFIX, type FeatureResult } from './feature.js';
import { addOperation } from './json-patch.js';
import type { KubeObject, PodTemplate } from './objects.js';
import type { Labels, Resolved } from './settings.js';

export const INTERCEPTION_ANNOTATION = 'sidecar.istio.io/interceptionMode';
export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';

export function whyPodSecurityForbids(namespaceLabels: Labels): string | undefined {
  const level = namespaceLabels[POD_SECURITY_ENFORCE_LABEL];
  // TPROXY gives the istio-proxy container NET_ADMIN, which these Pod Security levels reject.
  if (level !== 'baseline' && level !== 'restricted') return undefined;
  return `namespace enforces pod-security ${level}`;
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
  const forbidden = whyPodSecurityForbids(namespaceLabels);
  if (forbidden) {
    return skipped(
      forbidden,
      `${WARNING_PREFIX}TPROXY not set: ${forbidden} and the Istio proxy would need NET_ADMIN`,
    );
  }
  return {
    applied: true,
    ops: [addOperation(object, [...templatePath, 'metadata', 'annotations', INTERCEPTION_ANNOTATION], 'TPROXY')],
    change: 'istio-interception=TPROXY',
    warning: `${WARNING_PREFIX}set ${INTERCEPTION_ANNOTATION}=TPROXY so the Istio sidecar keeps the client IP`,
  };
}
