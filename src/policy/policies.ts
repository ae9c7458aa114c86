// From the webhook's definitions to the admission policies: two MutatingAdmissionPolicies and two
// ValidatingAdmissionPolicies in Warn mode for the warnings, one of each for Services and one for
// workloads and Pods, and a binding for each. Pure: the `policy` command only serializes what this returns.
import { WORKLOAD_KINDS } from '../mutation/workload-kinds.js';
import { antiAffinityPatch, antiAffinityVariables, antiAffinityWarnings } from './anti-affinity.js';
import { formatCel, valueOr } from './cel.js';
import {
  externalTrafficPolicyPatch,
  externalTrafficPolicyVariables,
  externalTrafficPolicyWarnings,
} from './external-traffic-policy.js';
import { istioInterceptionPatch, istioInterceptionVariables, istioInterceptionWarnings } from './istio-interception.js';
import { bindingFor, mutatingPolicy, warningPolicy, type PolicyObject, type Reinvocation, type Warning } from './objects.js';
import { matchConstraints, rulesFor, SERVICE_RULE, serviceVariables, workloadVariables } from './scope.js';
import { injectInvalid, invalidInjectMessage, ref } from './settings.js';

/** What the policies cannot do that the webhook does, each with its reason (docs/engines.md has them too). */
export const NOT_EXPRESSIBLE: readonly string[] = [
  'Node-count warnings (replicas above the schedulable nodes or zones under required anti-affinity: Pending pods, a rollout that deadlocks): they need the node watch of `serve --watch-nodes`; CEL in an admission policy sees only the request, its objects and the namespace.',
  'Warnings come from a ValidatingAdmissionPolicy in Warn mode (a MutatingAdmissionPolicy cannot warn), so the API server prefixes each with "Validation failed for ValidatingAdmissionPolicy \'<policy>\' with binding \'<binding>\': ".',
  'A validating policy sees only the stored result, not what the mutation changed: the "set ..." and "added ..." warnings also appear when the object already carried exactly that value on CREATE (or the UPDATE itself added it).',
  'An UPDATE that takes back a value the rules set (externalTrafficPolicy back to Cluster, the anti-affinity term or the TPROXY annotation removed) gets it back without a warning: the warning policy sees the stored object and the old one, both with the value, never what the user sent.',
  'A Pod that Pod Security rejects gets no TPROXY skip warning: validating policies run after the PodSecurity plugin (mutating webhooks before it), so a Pod it rejects never reaches them.',
  'Metrics, logs and the "mutations" audit annotation of the webhook: policies have only the API server\'s own admission metrics.',
  'Kubernetes older than 1.36 (admissionregistration.k8s.io/v1 policies) and admission.k8s.io/v1beta1: use the webhook there.',
  'Control characters other than newline, carriage return and tab in an invalid annotation value are quoted raw, not \\u-escaped as in the webhook\'s warning.',
];

function policyName(feature: string, prefix: string): string {
  return `${feature}.${prefix}`;
}

/** Each mutating policy's reinvocation, with the reason the output prints above it. */
const REINVOCATION = {
  'external-traffic-policy': {
    policy: 'IfNeeded',
    why:
      'reinvocationPolicy IfNeeded: the rule reads spec.type and spec.externalTrafficPolicy, the very fields a later webhook that shapes ' +
      'Services for a load balancer may set, so a later change to them gets a second pass, as under the webhook. A Service is small: the second run costs little.',
  },
  workloads: {
    policy: 'Never',
    why:
      'reinvocationPolicy Never: the API server counts every policy evaluation as a change, so IfNeeded would run this policy twice on every workload and Pod. ' +
      'A second run could change the outcome only if a later mutation changed what the rules read (the kind, spec.selector, the podAntiAffinity terms of the pod template, ' +
      'its annotations and labels) or took away what they added. Admission policies run before all mutating webhooks; the webhook that follows on Pods, ' +
      "Istio's sidecar injector, finds sidecar.istio.io/interceptionMode already set and keeps it (with Istio CNI it writes the annotation back from the existing value), " +
      'and adds containers, volumes, labels and status annotations that these rules do not read: a second run would change nothing. ' +
      'A later webhook that removes or replaces the anti-affinity or the annotation wins, where the webhook engine (IfNeeded) would put them back (docs/engines.md).',
  },
} as const satisfies Record<string, Reinvocation>;

/** The comment above each mutating policy in the output: why it is or is not run again. */
export function policyComments(prefix: string): Map<string, string> {
  return new Map(Object.entries(REINVOCATION).map(([feature, r]) => [policyName(feature, prefix), r.why]));
}

export function generatePolicies(prefix: string): PolicyObject[] {
  const workloads = (kinds: readonly string[]) => matchConstraints(prefix, rulesFor(kinds));
  const services = matchConstraints(prefix, [SERVICE_RULE]);
  const workloadVars = (kinds: readonly string[]) => workloadVariables(prefix, kinds);
  const allKinds = Object.keys(WORKLOAD_KINDS);

  // One mutating policy per object family, each with one JSON patch: the workload policy's
  // anti-affinity and TPROXY operations share no parent that a valid workload can lack (the pod
  // template and its metadata and spec are never absent from a typed object).
  const mutating = [
    mutatingPolicy(
      policyName('external-traffic-policy', prefix),
      services,
      [...serviceVariables(prefix), ...externalTrafficPolicyVariables(prefix)],
      externalTrafficPolicyPatch(),
      REINVOCATION['external-traffic-policy'],
    ),
    mutatingPolicy(
      policyName('workloads', prefix),
      workloads(allKinds),
      [...workloadVars(allKinds), ...antiAffinityVariables(prefix), ...istioInterceptionVariables(prefix)],
      [antiAffinityPatch(), istioInterceptionPatch()].map((ops) => `(${formatCel(ops)})`).join('\n+ '),
      REINVOCATION.workloads,
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
