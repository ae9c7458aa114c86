// Which stored objects slipped past the webhook, and what to do about each. Pure: the repairer
// feeds it every object its watches deliver. An object slipped through when the webhook's rules,
// run now as for its CREATE, would change it (audit's drift, the same mutate()) and it was created
// after the namespace's realip labels were last set. Objects older than that were created under
// other labels: they keep their shape, as the README promises, and are audit's to report.
import { driftOf, type AuditedKind, type Drift, type ListedObject } from '../commands/audit-scan.js';
import type { Labels } from '../mutation/settings.js';

/** What the repairer knows of a namespace: its labels and when the webhook's labels were last set. */
export interface RepairNamespace {
  name: string;
  labels: Labels;
  /** Unix ms (whole seconds, from managedFields); undefined when it cannot be told. */
  labelsSetAt: number | undefined;
}

export type RepairDecision =
  /** A Service: the patch sets externalTrafficPolicy, which restarts no pods. */
  | { action: 'patch'; drift: Omit<Drift, 'action'> }
  /** A workload: its pod template would change, which rolls out new pods; only reported. */
  | { action: 'report'; drift: Omit<Drift, 'action'> }
  | { action: 'none'; reason: string };

/**
 * The decision for one stored object. Timestamps have whole seconds: an object created in the
 * same second as the labels may predate them, so it counts as older (left alone).
 */
export function repairDecision(
  object: ListedObject,
  audited: AuditedKind,
  apiVersion: string,
  namespace: RepairNamespace,
  labelPrefix: string,
): RepairDecision {
  if (namespace.labels[`${labelPrefix}/inject`] !== 'enabled') return { action: 'none', reason: 'namespace not opted in' };
  const drift = driftOf(object, audited, apiVersion, namespace, labelPrefix);
  if (!drift) return { action: 'none', reason: 'as the webhook would make it' };
  if (namespace.labelsSetAt === undefined) {
    return { action: 'none', reason: `no managedFields entry of namespace ${namespace.name} owns a ${labelPrefix}/ label: when it opted in is unknown` };
  }
  const created = Date.parse(object.metadata?.creationTimestamp ?? '');
  if (Number.isNaN(created)) return { action: 'none', reason: 'no creationTimestamp' };
  if (created <= namespace.labelsSetAt) {
    return { action: 'none', reason: `created before the namespace's ${labelPrefix}/ labels were last set: audit's to report` };
  }
  return { action: audited.kind === 'Service' ? 'patch' : 'report', drift };
}
