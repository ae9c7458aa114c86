// From the webhook's definitions to the admission policies: three MutatingAdmissionPolicies
// (one per feature), two ValidatingAdmissionPolicies in Warn mode for the warnings, and a
// binding for each. Pure: the `policy` command only serializes what this returns.
import { WORKLOAD_KINDS } from '../mutation/workload-kinds.js';
import { ANTI_AFFINITY_KINDS, antiAffinityPatch, antiAffinityVariables, antiAffinityWarnings } from './anti-affinity.js';
import { valueOr } from './cel.js';
import {
  externalTrafficPolicyPatch,
  externalTrafficPolicyVariables,
  externalTrafficPolicyWarnings,
} from './external-traffic-policy.js';
import { INTERCEPTION_KINDS, istioInterceptionPatch, istioInterceptionVariables, istioInterceptionWarnings } from './istio-interception.js';
import { bindingFor, mutatingPolicy, warningPolicy, type PolicyObject, type Warning } from './objects.js';
import { matchConstraints, rulesFor, SERVICE_RULE, serviceVariables, workloadVariables } from './scope.js';
import { injectInvalid, invalidInjectMessage, ref } from './settings.js';

/** What the policies cannot do that the webhook does, each with its reason (docs/engines.md has them too). */
export const NOT_EXPRESSIBLE: readonly string[] = [
  'Node-count warnings (replicas above the schedulable nodes or zones under required anti-affinity: Pending pods, a rollout that deadlocks): they need the node watch of `serve --watch-nodes`; CEL in an admission policy sees only the request, its objects and the namespace.',
  'Warnings come from a ValidatingAdmissionPolicy in Warn mode (a MutatingAdmissionPolicy cannot warn), so the API server prefixes each with "Validation failed for ValidatingAdmissionPolicy \'<policy>\' with binding \'<binding>\': ".',
  'A validating policy sees only the stored result, not what the mutation changed: the "set ..." and "added ..." warnings also appear when the object already carried exactly that value on CREATE (or the UPDATE itself added it).',
  'Metrics, logs and the "mutations" audit annotation of the webhook: policies have only the API server\'s own admission metrics.',
  'Kubernetes older than 1.36 (admissionregistration.k8s.io/v1 policies) and admission.k8s.io/v1beta1: use the webhook there.',
  'Control characters other than newline, carriage return and tab in an invalid annotation value are quoted raw, not \\u-escaped as in the webhook\'s warning.',
];

function policyName(feature: string, prefix: string): string {
  return `${feature}.${prefix}`;
}

export function generatePolicies(prefix: string): PolicyObject[] {
  const workloads = (kinds: readonly string[]) => matchConstraints(prefix, rulesFor(kinds));
  const services = matchConstraints(prefix, [SERVICE_RULE]);
  const workloadVars = (kinds: readonly string[]) => workloadVariables(prefix, kinds);
  const allKinds = Object.keys(WORKLOAD_KINDS);

  const mutating = [
    mutatingPolicy(
      policyName('external-traffic-policy', prefix),
      services,
      [...serviceVariables(prefix), ...externalTrafficPolicyVariables(prefix)],
      externalTrafficPolicyPatch(),
    ),
    mutatingPolicy(
      policyName('anti-affinity', prefix),
      workloads(ANTI_AFFINITY_KINDS),
      [...workloadVars(ANTI_AFFINITY_KINDS), ...antiAffinityVariables(prefix)],
      antiAffinityPatch(),
    ),
    mutatingPolicy(
      policyName('istio-interception', prefix),
      workloads(INTERCEPTION_KINDS),
      [...workloadVars(INTERCEPTION_KINDS), ...istioInterceptionVariables(prefix)],
      istioInterceptionPatch(),
    ),
  ];

  const injectWarning = (when: string): Warning => ({ name: 'invalid-inject', when: `${when} && ${injectInvalid}`, message: invalidInjectMessage(prefix) });
  // The webhook configuration sends an UPDATE only when it changes the template, replicas or strategy.
  const relevantUpdate = `(request.operation == "CREATE" || !${ref('templateUnchanged')}` +
    ['replicas', 'strategy'].map((f) => ` || ${valueOr('object', ['spec', f], 'null')} != ${valueOr('oldObject', ['spec', f], 'null')}`).join('') + ')';
  const warnings = [
    warningPolicy(
      policyName('service-warnings', prefix),
      services,
      [...serviceVariables(prefix), ...externalTrafficPolicyVariables(prefix)],
      [injectWarning(ref('external')), ...externalTrafficPolicyWarnings(prefix)],
    ),
    warningPolicy(
      policyName('workload-warnings', prefix),
      workloads(allKinds),
      [...workloadVars(allKinds), ...antiAffinityVariables(prefix), ...istioInterceptionVariables(prefix)],
      [injectWarning(relevantUpdate), ...antiAffinityWarnings(prefix), ...istioInterceptionWarnings(prefix)],
    ),
  ];

  return [...mutating, ...warnings].flatMap((p) => [p, bindingFor(p)]);
}
