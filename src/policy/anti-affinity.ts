// Pod anti-affinity on the workload's own selector, as the webhook's src/mutation/anti-affinity.ts.
// The (anti-)affinity term lists are atomic, which an ApplyConfiguration may not touch: the
// term is appended with a JSON patch, whose parents are added first where they are missing.
import { antiAffinityAddedWarning, PREFERRED_WEIGHT, TOPOLOGY_KEYS } from '../mutation/anti-affinity.js';
import type { SettingValue } from '../mutation/settings.js';
import { WORKLOAD_KINDS } from '../mutation/workload-kinds.js';
import { addPatch, dynMap, list, lit, message, valueOr, type Cel } from './cel.js';
import type { Warning } from './objects.js';
import { invalidSettingMessage, ref, settingValid, settingValue, settingVariable, type Variable } from './settings.js';
import { byTemplatePath, skipWorkload, workloadSources } from './scope.js';

export const ANTI_AFFINITY_KINDS = Object.keys(WORKLOAD_KINDS).filter((k) => WORKLOAD_KINDS[k]!.antiAffinity);

const NONE: SettingValue<'anti-affinity'> = 'none';
const REQUIRED: SettingValue<'anti-affinity'> = 'required';
const LISTS = {
  required: 'requiredDuringSchedulingIgnoredDuringExecution',
  preferred: 'preferredDuringSchedulingIgnoredDuringExecution',
} as const;
const ANTI = ['spec', 'affinity', 'podAntiAffinity'];

/** The topologyKeys of every podAntiAffinity term in a template, required and preferred. */
function topologyKeys(template: Cel): Cel {
  const terms = (name: string) => valueOr(template, [...ANTI, name], '[]');
  return `${terms(LISTS.required)}.map(t, t.?topologyKey.orValue("")) + ${terms(LISTS.preferred)}.map(p, p.?podAffinityTerm.?topologyKey.orValue(""))`;
}

export function antiAffinityVariables(prefix: string): Variable[] {
  const selector = (field: string, empty: string) => valueOr('object', ['spec', 'selector', field], empty);
  const labels = selector('matchLabels', '{}');
  const expressions = selector('matchExpressions', '[]');
  return [
    settingVariable(prefix, 'anti-affinity', workloadSources),
    settingVariable(prefix, 'anti-affinity-topology', workloadSources),
    // The selector's non-empty parts; empty when it selects nothing specific (no anti-affinity then).
    {
      name: 'selector',
      expression:
        `size(${labels}) > 0 && size(${expressions}) > 0 ? ${dynMap({ matchLabels: labels, matchExpressions: expressions })}` +
        ` : size(${labels}) > 0 ? ${dynMap({ matchLabels: labels })}` +
        ` : size(${expressions}) > 0 ? ${dynMap({ matchExpressions: expressions })} : {}`,
    },
    {
      name: 'topologyKey',
      expression: `${dynMap(Object.fromEntries(Object.entries(TOPOLOGY_KEYS).map(([k, v]) => [k, lit(v)])))}[${settingValue('anti-affinity-topology')}]`,
    },
    { name: 'existingKeys', expression: topologyKeys(ref('template')) },
  ];
}

const term = dynMap({ labelSelector: ref('selector'), topologyKey: ref('topologyKey') });
const preferredTerm = dynMap({ weight: String(PREFERRED_WEIGHT), podAffinityTerm: term });
const required = `${settingValue('anti-affinity')} == ${lit(REQUIRED)}`;

/** Everything but the existing terms says to add one. */
const wanted =
  `!(${skipWorkload}) && ${settingValid('anti-affinity')} && ${settingValue('anti-affinity')} != ${lit(NONE)}` +
  ` && ${settingValid('anti-affinity-topology')} && size(${ref('selector')}) > 0`;

/** The patch for a request of any workload kind: the kind is checked first, as the cheapest test. */
export function antiAffinityPatch(): Cel {
  const add = (list: string, value: Cel) => byTemplatePath(ANTI_AFFINITY_KINDS, (path) => addPatch('object', [...path, ...ANTI, list, '-'], value));
  return `request.kind.kind in ${list(ANTI_AFFINITY_KINDS)} && ${wanted} && !(${ref('topologyKey')} in ${ref('existingKeys')})` +
    ` ? (${required} ? [${add(LISTS.required, term)}] : [${add(LISTS.preferred, preferredTerm)}]) : []`;
}

export function antiAffinityWarnings(prefix: string): Warning[] {
  const kind = `request.kind.kind in ${list(ANTI_AFFINITY_KINDS)}`;
  const active = `${kind} && !(${skipWorkload})`;
  const ours = (template: Cel) =>
    `(${required} ? ${term} in ${valueOr(template, [...ANTI, LISTS.required], '[]')} : ${preferredTerm} in ${valueOr(template, [...ANTI, LISTS.preferred], '[]')})`;
  const oldTemplate = byTemplatePath(ANTI_AFFINITY_KINDS, (path) => valueOr('oldObject', path, '{}'));
  return [
    { name: 'invalid-anti-affinity', when: `${active} && !(${settingValid('anti-affinity')})`, message: invalidSettingMessage(prefix, 'anti-affinity') },
    {
      name: 'invalid-anti-affinity-topology',
      when: `${active} && ${settingValid('anti-affinity')} && ${settingValue('anti-affinity')} != ${lit(NONE)} && !(${settingValid('anti-affinity-topology')})`,
      message: invalidSettingMessage(prefix, 'anti-affinity-topology'),
    },
    {
      name: 'anti-affinity-added',
      // Added by the mutation when the stored template's only term on that key is ours and the
      // previous version had none on it.
      when:
        `${kind} && ${wanted} && size(${ref('existingKeys')}.filter(k, k == ${ref('topologyKey')})) == 1 && ${ours(ref('template'))}` +
        ` && (request.operation == "CREATE" || !(${ref('topologyKey')} in ${topologyKeys(oldTemplate)}))`,
      message: message(antiAffinityAddedWarning, settingValue('anti-affinity'), ref('topologyKey')),
    },
  ];
}
