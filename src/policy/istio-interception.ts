// sidecar.istio.io/interceptionMode: TPROXY on pod templates and Pods, as the webhook's
// src/mutation/istio-interception.ts: an explicit value is kept; skipped in Istio ambient
// namespaces (unless the template asks for a sidecar) and under Pod Security baseline/restricted.
import {
  AMBIENT_MODE,
  DATAPLANE_MODE_LABEL,
  INTERCEPTION_ANNOTATION,
  LEVELS_WITHOUT_NET_ADMIN,
  POD_SECURITY_ENFORCE_LABEL,
  podSecuritySkipWarning,
  SIDECAR_INJECT,
  TPROXY_SET_WARNING,
} from '../mutation/istio-interception.js';
import type { SettingValue } from '../mutation/settings.js';
import { WORKLOAD_KINDS } from '../mutation/workload-kinds.js';
import { addPatch, list, lit, message, valueOr, type Cel } from './cel.js';
import type { Warning } from './objects.js';
import { invalidSettingMessage, ref, settingValid, settingValue, settingVariable, type Variable } from './settings.js';
import { byTemplatePath, skipWorkload, workloadSources } from './scope.js';

export const INTERCEPTION_KINDS = Object.keys(WORKLOAD_KINDS);

const TPROXY: SettingValue<'istio-interception'> = 'TPROXY';
const SETTING = 'istio-interception';
const SIDECAR_REQUESTED = 'true';

const label = (map: Cel, key: string) => `${map}[?${lit(key)}].orValue("")`;

export function istioInterceptionVariables(prefix: string): Variable[] {
  const templateLabels = valueOr(ref('template'), ['metadata', 'labels'], '{}');
  return [
    settingVariable(prefix, SETTING, workloadSources),
    // Ambient mode has no sidecar, unless the template asks for one (as a label or an annotation).
    {
      name: 'ambient',
      expression:
        `${label(ref('namespaceLabels'), DATAPLANE_MODE_LABEL)} == ${lit(AMBIENT_MODE)}` +
        ` && ${label(templateLabels, SIDECAR_INJECT)} != ${lit(SIDECAR_REQUESTED)} && ${label(ref('templateAnnotations'), SIDECAR_INJECT)} != ${lit(SIDECAR_REQUESTED)}`,
    },
    { name: 'podSecurityLevel', expression: label(ref('namespaceLabels'), POD_SECURITY_ENFORCE_LABEL) },
  ];
}

const explicit = `${lit(INTERCEPTION_ANNOTATION)} in ${ref('templateAnnotations')}`;
const forbidden = `${ref('podSecurityLevel')} in ${list(LEVELS_WITHOUT_NET_ADMIN)}`;
const wanted = `!(${skipWorkload}) && ${settingValid(SETTING)} && ${settingValue(SETTING)} == ${lit(TPROXY)} && !${ref('ambient')}`;

export function istioInterceptionPatch(): Cel {
  const add = byTemplatePath(INTERCEPTION_KINDS, (path) => addPatch('object', [...path, 'metadata', 'annotations', INTERCEPTION_ANNOTATION], lit(TPROXY)));
  return `${wanted} && !(${explicit}) && !(${forbidden}) ? [${add}] : []`;
}

export function istioInterceptionWarnings(prefix: string): Warning[] {
  const oldAnnotations = byTemplatePath(INTERCEPTION_KINDS, (path) => valueOr('oldObject', [...path, 'metadata', 'annotations'], '{}'));
  return [
    { name: 'invalid-istio-interception', when: `!(${skipWorkload}) && !(${settingValid(SETTING)})`, message: invalidSettingMessage(prefix, SETTING) },
    {
      name: 'pod-security',
      // The mutation never adds the annotation here, so one in the stored template is the user's.
      when: `${wanted} && !(${explicit}) && ${forbidden}`,
      message: message(podSecuritySkipWarning, ref('podSecurityLevel')),
    },
    {
      name: 'tproxy-set',
      when:
        `${wanted} && !(${forbidden}) && ${ref('templateAnnotations')}[?${lit(INTERCEPTION_ANNOTATION)}].orValue("") == ${lit(TPROXY)}` +
        ` && (request.operation == "CREATE" || !(${lit(INTERCEPTION_ANNOTATION)} in ${oldAnnotations}))`,
      message: { text: TPROXY_SET_WARNING },
    },
  ];
}
