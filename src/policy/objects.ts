// The admission policy objects, as the API server takes them (admissionregistration.k8s.io/v1,
// GA in Kubernetes 1.36). Fail open, like the webhook's shipped failurePolicy Ignore.
import { formatCel, type Cel } from './cel.js';
import type { Variable } from './settings.js';
import type { matchConstraints } from './scope.js';

const API_VERSION = 'admissionregistration.k8s.io/v1';

export type PolicyObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };

const readable = (variables: Variable[]) => variables.map((v) => ({ ...v, expression: formatCel(v.expression) }));

export function mutatingPolicy(name: string, match: ReturnType<typeof matchConstraints>, variables: Variable[], patch: Cel): PolicyObject {
  return {
    apiVersion: API_VERSION,
    kind: 'MutatingAdmissionPolicy',
    metadata: { name },
    spec: {
      matchConstraints: match,
      variables: readable(variables),
      mutations: [{ patchType: 'JSONPatch', jsonPatch: { expression: formatCel(patch) } }],
      // Run again when a later mutation changed the object, as the webhook does; the patches are idempotent.
      reinvocationPolicy: 'IfNeeded',
      failurePolicy: 'Ignore',
    },
  };
}

export interface Warning {
  name: string;
  /** True when the warning is due. */
  when: Cel;
  message: Cel;
}

/** Warnings come from a ValidatingAdmissionPolicy bound in Warn mode: a mutating policy cannot emit any. */
export function warningPolicy(name: string, match: ReturnType<typeof matchConstraints>, variables: Variable[], warnings: Warning[]): PolicyObject {
  return {
    apiVersion: API_VERSION,
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      matchConstraints: match,
      variables: readable(variables),
      validations: warnings.map((w) => ({ expression: formatCel(`!(${w.when})`), messageExpression: w.message, reason: 'Invalid' })),
      failurePolicy: 'Ignore',
    },
  };
}

export function bindingFor(policy: PolicyObject): PolicyObject {
  const validating = policy.kind === 'ValidatingAdmissionPolicy';
  return {
    apiVersion: API_VERSION,
    kind: `${policy.kind}Binding`,
    metadata: { name: policy.metadata.name },
    spec: { policyName: policy.metadata.name, ...(validating && { validationActions: ['Warn'] }) },
  };
}
