// externalTrafficPolicy: Local on NodePort and LoadBalancer Services, as the webhook's
// src/mutation/external-traffic-policy.ts, with its warnings.
import { EXTERNAL_SERVICE_TYPES, LOCAL_SET_WARNING } from '../mutation/external-traffic-policy.js';
import { localWithoutSpreadText } from '../mutation/scheduling-warnings.js';
import type { SettingValue } from '../mutation/settings.js';
import { addPatch, list, lit, type Cel } from './cel.js';
import type { Warning } from './objects.js';
import { injected, invalidSettingMessage, ref, settingValid, settingValue, settingVariable, type Variable } from './settings.js';
import { serviceSources } from './scope.js';

const LOCAL: SettingValue<'external-traffic-policy'> = 'Local';
const NO_SPREAD: SettingValue<'anti-affinity'> = 'none';
const SETTING = 'external-traffic-policy';

const policyOf = (object: string): Cel => `${object}.spec.?externalTrafficPolicy.orValue("")`;

export function externalTrafficPolicyVariables(prefix: string): Variable[] {
  return [
    settingVariable(prefix, SETTING, serviceSources),
    // ClusterIP, headless and ExternalName Services need nothing.
    { name: 'external', expression: `object.spec.?type.orValue("ClusterIP") in ${list(EXTERNAL_SERVICE_TYPES)}` },
  ];
}

const wantsLocal = `${ref('external')} && ${injected} && ${settingValid(SETTING)} && ${settingValue(SETTING)} == ${lit(LOCAL)}`;

export function externalTrafficPolicyPatch(): Cel {
  return `${wantsLocal} && ${policyOf('object')} != ${lit(LOCAL)} ? [${addPatch('object', ['spec', 'externalTrafficPolicy'], lit(LOCAL))}] : []`;
}

export function externalTrafficPolicyWarnings(prefix: string): Warning[] {
  const isLocal = `${policyOf('object')} == ${lit(LOCAL)}`;
  return [
    { name: 'invalid-setting', when: `${ref('external')} && ${injected} && !(${settingValid(SETTING)})`, message: invalidSettingMessage(prefix, SETTING) },
    {
      name: 'set-local',
      // The stored result is all a validating policy sees: Local now, and not before this request.
      when: `${wantsLocal} && ${isLocal} && (request.operation == "CREATE" || ${policyOf('oldObject')} != ${lit(LOCAL)})`,
      message: { text: LOCAL_SET_WARNING },
    },
    {
      name: 'local-without-spread',
      when: `${ref('external')} && ${injected} && ${isLocal} && ${ref('namespaceLabels')}[?${lit(`${prefix}/anti-affinity`)}].orValue("") == ${lit(NO_SPREAD)}`,
      message: { text: localWithoutSpreadText(`${prefix}/anti-affinity`) },
    },
  ];
}
