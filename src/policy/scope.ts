// What a policy matches and the variables every policy starts from: the namespace's labels, the
// object's annotations and, for workloads, the pod template, found by kind from WORKLOAD_KINDS.
import { WORKLOAD_KINDS, type WorkloadKind } from '../mutation/workload-kinds.js';
import { INJECT_VALUES } from '../mutation/settings.js';
import { list, lit, valueOr, type Cel } from './cel.js';
import { injectVariable, ref, type Source, type Variable } from './settings.js';

/** The resource of a kind: its lowercase plural (all of WORKLOAD_KINDS end in a consonant + "s"). */
export function resourceOf(kind: string): string {
  return `${kind.toLowerCase()}s`;
}

interface ResourceRule {
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
  operations: string[];
  scope: 'Namespaced';
}

/** The rules for these kinds: one per API group and set of operations. */
export function rulesFor(kinds: readonly string[]): ResourceRule[] {
  const rules = new Map<string, ResourceRule>();
  for (const kind of kinds) {
    const { groups, createOnly } = WORKLOAD_KINDS[kind]!;
    const operations = createOnly ? ['CREATE'] : ['CREATE', 'UPDATE'];
    for (const group of groups) {
      const id = `${group}|${operations.join()}`;
      const rule = rules.get(id) ?? { apiGroups: [group], apiVersions: ['*'], resources: [], operations, scope: 'Namespaced' };
      rule.resources.push(resourceOf(kind));
      rules.set(id, rule);
    }
  }
  return [...rules.values()];
}

export const SERVICE_RULE: ResourceRule = {
  apiGroups: [''],
  apiVersions: ['v1'],
  resources: ['services'],
  operations: ['CREATE', 'UPDATE'],
  scope: 'Namespaced',
};

/** Only opted-in namespaces, as the webhook configuration's namespaceSelector. */
export function matchConstraints(prefix: string, resourceRules: ResourceRule[]) {
  return {
    namespaceSelector: { matchExpressions: [{ key: `${prefix}/inject`, operator: 'In', values: [INJECT_VALUES[0]] }] },
    resourceRules,
    matchPolicy: 'Equivalent',
  };
}

const kindIs = (kinds: readonly string[]): Cel => `request.kind.kind in ${list(kinds)}`;

/** `build(templatePath)` for the kind of the request: one branch per distinct template path. */
export function byTemplatePath(kinds: readonly string[], build: (templatePath: readonly string[], kind: WorkloadKind) => Cel): Cel {
  const groups = new Map<string, string[]>();
  for (const kind of kinds) {
    const key = JSON.stringify(WORKLOAD_KINDS[kind]!.templatePath);
    groups.set(key, [...(groups.get(key) ?? []), kind]);
  }
  const branches = [...groups.values()];
  const last = branches.pop()!;
  const otherwise = build(WORKLOAD_KINDS[last[0]!]!.templatePath, WORKLOAD_KINDS[last[0]!]!);
  return branches.reduceRight((expr, group) => `(${kindIs(group)} ? ${build(WORKLOAD_KINDS[group[0]!]!.templatePath, WORKLOAD_KINDS[group[0]!]!)} : ${expr})`, otherwise);
}

export const namespaceLabels: Variable = { name: 'namespaceLabels', expression: 'namespaceObject.?metadata.?labels.orValue({})' };
export const objectAnnotations: Variable = { name: 'objectAnnotations', expression: valueOr('object', ['metadata', 'annotations'], '{}') };

const objectWhere: Cel = `${lit('annotation on the ')} + request.kind.kind`;

export const serviceSources: Source[] = [
  { where: objectWhere, values: ref('objectAnnotations') },
  { where: lit('namespace label'), values: ref('namespaceLabels') },
];

/** The variables of a policy on services: labels, annotations, the opt-out. */
export function serviceVariables(prefix: string): Variable[] {
  return [namespaceLabels, objectAnnotations, injectVariable(prefix, serviceSources.slice(0, 1))];
}

/**
 * The sources of a workload's settings: the pod template's annotations, then the object's, then
 * the namespace. A Pod is its own template: its annotations are named once, as the Pod's.
 */
export const workloadSources: Source[] = [
  { where: ref('templateWhere'), values: ref('templateAnnotations') },
  { where: objectWhere, values: ref('objectAnnotations') },
  { where: lit('namespace label'), values: ref('namespaceLabels') },
];

/**
 * The variables of a policy on workloads of these kinds. `skip` says the webhook would leave the
 * object alone: an opt-out (or an invalid one), or an UPDATE that does not change the template.
 */
export function workloadVariables(prefix: string, kinds: readonly string[]): Variable[] {
  return [
    namespaceLabels,
    objectAnnotations,
    { name: 'template', expression: byTemplatePath(kinds, (path) => valueOr('object', path, '{}')) },
    { name: 'templateAnnotations', expression: valueOr(ref('template'), ['metadata', 'annotations'], '{}') },
    { name: 'templateWhere', expression: byTemplatePath(kinds, (path) => (path.length === 0 ? objectWhere : lit('annotation on the pod template'))) },
    injectVariable(prefix, workloadSources.slice(0, 2)),
    {
      name: 'templateUnchanged',
      expression: `request.operation == "UPDATE" && ${ref('template')} == ${byTemplatePath(kinds, (path) => valueOr('oldObject', path, '{}'))}`,
    },
  ];
}

export const skipWorkload: Cel = `${ref('inject')}.raw != ${lit(INJECT_VALUES[0])} || ${ref('templateUnchanged')}`;
