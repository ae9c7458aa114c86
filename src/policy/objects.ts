// The admission policy objects, as the API server takes them (admissionregistration.k8s.io/v1,
// GA in Kubernetes 1.36). Fail open, like the webhook's shipped failurePolicy Ignore.
import { formatCel, type Cel } from './cel.js';
import type { Variable } from './settings.js';
import type { matchConstraints } from './scope.js';

const API_VERSION = 'admissionregistration.k8s.io/v1';

export type PolicyObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };

const readable = (variables: Variable[]) => variables.map((v) => ({ ...v, expression: formatCel(v.expression) }));

/**
 * Whether the API server runs a policy again after later mutations, and why, for the comment
 * above it in the output. The API server counts every evaluation of a policy as a change, even
 * one that patches nothing, so IfNeeded runs a policy twice on every request it matches.
 */
export interface Reinvocation {
  policy: 'IfNeeded' | 'Never';
  why: string;
}

/** One JSON patch for everything the policy changes: each mutation encodes, patches and decodes the object. */
export function mutatingPolicy(name: string, match: ReturnType<typeof matchConstraints>, variables: Variable[], patch: Cel, reinvocation: Reinvocation): PolicyObject {
  return {
    apiVersion: API_VERSION,
    kind: 'MutatingAdmissionPolicy',
    metadata: { name },
    spec: {
      matchConstraints: match,
      variables: readable(variables),
      mutations: [{ patchType: 'JSONPatch', jsonPatch: { expression: formatCel(patch) } }],
      reinvocationPolicy: reinvocation.policy,
      failurePolicy: 'Ignore',
    },
  };
}

export interface Warning {
  name: string;
  /** True when the warning is due. */
  when: Cel;
  /**
   * The text: CEL, or a constant. The API server evaluates every messageExpression of a policy on
   * every request, warning due or not, so a costly one returns "" unless its warning can be due.
   */
  message: Cel | { text: string };
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
      validations: warnings.map((w) => ({
        expression: formatCel(`!(${w.when})`),
        ...(typeof w.message === 'string' ? { messageExpression: w.message } : { message: w.message.text }),
        reason: 'Invalid',
      })),
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
