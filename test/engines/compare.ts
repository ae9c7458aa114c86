// Where two engines' outcomes for the same case differ, and which differences have a known reason.
import { isDeepStrictEqual } from 'node:util';
import { LOCAL_SET_WARNING } from '../../src/mutation/external-traffic-policy.js';
import { INTERCEPTION_ANNOTATION, TPROXY_SET_WARNING } from '../../src/mutation/istio-interception.js';
import { antiAffinityAddedWarning } from '../../src/mutation/anti-affinity.js';
import { WARNING_PREFIX } from '../../src/mutation/feature.js';
import type { Obj } from '../e2e/webhook-harness.js';
import type { Case } from './corpus.js';
import { withoutGeneratedJobLabels, type CaseOutcome, type Outcome } from './engines.js';

export interface Difference {
  case: string;
  phase: 'create' | 'update' | 'second pass';
  what: string;
  /** Set when the difference is a known limit of the policy engine (docs/engines.md). */
  reason?: string;
}

const templateOf = (o: Obj): Obj | undefined => (o.kind === 'Pod' ? o : o.kind === 'CronJob' ? o.spec?.jobTemplate?.spec?.template : o.spec?.template);
const ADDED = antiAffinityAddedWarning('\u0000', '\u0000').split('\u0000')[0]!;

/** Whether the object sent already carried what a change warning says was set. */
function sentAlready(warning: string, sent: Obj): boolean {
  if (warning === LOCAL_SET_WARNING) return sent.spec?.externalTrafficPolicy === 'Local';
  if (warning === TPROXY_SET_WARNING) return templateOf(sent)?.metadata?.annotations?.[INTERCEPTION_ANNOTATION] === 'TPROXY';
  if (warning.startsWith(ADDED)) {
    const anti = templateOf(sent)?.spec?.affinity?.podAntiAffinity ?? {};
    const terms: Obj[] = [...(anti.requiredDuringSchedulingIgnoredDuringExecution ?? []), ...(anti.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p: Obj) => p.podAffinityTerm)];
    return terms.some((t) => t?.topologyKey && warning.includes(` ${t.topologyKey} `));
  }
  return false;
}

const ORDER =
  "the same warnings; the policy's come after the PodSecurity plugin's: the API server runs ValidatingAdmissionPolicies after it, mutating webhooks before it";
const JOB_LABELS =
  "Job defaulting makes metadata.labels the template's labels map itself (SetDefaults_Job), so the controller-uid labels PrepareForCreate adds to the template show in metadata.labels too, or not when an admission step copied the object in between: the two engines' paths copy it differently";

const byOrigin = (warnings: string[]) => [...warnings.filter((w) => w.startsWith(WARNING_PREFIX)), ...warnings.filter((w) => !w.startsWith(WARNING_PREFIX))];

const EXPLICIT =
  'the object sent already carried the value: a ValidatingAdmissionPolicy sees only the stored result and cannot tell it from one the mutation set';

function compareOutcome(c: Case, phase: Difference['phase'], sent: Obj, webhook: Outcome, policy: Outcome): Difference[] {
  const out: Difference[] = [];
  if (!isDeepStrictEqual(webhook.object, policy.object)) {
    const explained = isDeepStrictEqual(withoutGeneratedJobLabels(webhook.object), withoutGeneratedJobLabels(policy.object));
    out.push({
      case: c.name,
      phase,
      what: `stored object:\n  webhook ${JSON.stringify(webhook.object)}\n  policy  ${JSON.stringify(policy.object)}`,
      ...(explained && { reason: JOB_LABELS }),
    });
  }
  if (!isDeepStrictEqual(webhook.warnings, policy.warnings) && isDeepStrictEqual(byOrigin(webhook.warnings), byOrigin(policy.warnings))) {
    out.push({ case: c.name, phase, what: `warnings in another order:\n  webhook ${JSON.stringify(webhook.warnings)}\n  policy  ${JSON.stringify(policy.warnings)}`, reason: ORDER });
  } else if (!isDeepStrictEqual(webhook.warnings, policy.warnings)) {
    const extra = policy.warnings.filter((w) => !webhook.warnings.includes(w));
    const missing = webhook.warnings.filter((w) => !policy.warnings.includes(w));
    const explained = missing.length === 0 && extra.length > 0 && extra.every((w) => sentAlready(w, sent));
    out.push({
      case: c.name,
      phase,
      what: `warnings:\n  webhook ${JSON.stringify(webhook.warnings)}\n  policy  ${JSON.stringify(policy.warnings)}`,
      ...(explained && { reason: EXPLICIT }),
    });
  }
  return out;
}

export function differences(c: Case, webhook: CaseOutcome, policy: CaseOutcome): Difference[] {
  const out = compareOutcome(c, 'create', c.object, webhook.create, policy.create);
  if (webhook.update && policy.update) out.push(...compareOutcome(c, 'update', webhook.updateSent!, webhook.update, policy.update));
  for (const [engine, outcome] of [['webhook', webhook], ['policy', policy]] as const) {
    if (outcome.secondPass) out.push({ case: c.name, phase: 'second pass', what: `${engine}: ${outcome.secondPass}` });
  }
  return out;
}
