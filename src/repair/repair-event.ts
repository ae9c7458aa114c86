// The Kubernetes Event the repairer leaves on an object that slipped through: on a workload, what
// it lacks and how to apply it; on a Service, what was set. Named after the object's uid, so two
// replicas (or one after a restart) write the same Event once: the second create is refused
// with 409 AlreadyExists.
import { createHash } from 'node:crypto';
import type { Drift } from '../commands/audit-scan.js';

export const EVENT_COMPONENT = 'realip-webhook';
/** A workload left unmutated, reported. */
export const REASON_UNMUTATED = 'AdmittedUnmutated';
/** A Service left unmutated, patched after the fact. */
export const REASON_REPAIRED = 'RepairedUnmutated';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  resourceVersion?: string | undefined;
}

/** `<object name>.realip-<10 hex of sha256(uid)>`: a valid name, the same on every replica. */
export function eventName(target: EventTarget): string {
  const hash = createHash('sha256').update(target.uid).digest('hex').slice(0, 10);
  // 253 is the limit of a name; a cut name must still end in an alphanumeric character.
  const base = target.name.slice(0, 230).replace(/[^a-z0-9]+$/, '');
  return `${base}.realip-${hash}`;
}

/** How a user applies what a workload lacks: any change of its pod template is mutated. */
function howToApply(kind: string, name: string): string {
  if (kind === 'Job') return 'a Job\'s pod template cannot change: recreate it to apply them';
  if (kind === 'CronJob') return 'the next change of its job template applies them';
  return `the next change of its pod template applies them (kubectl rollout restart ${kind.toLowerCase()}/${name})`;
}

export function unmutatedMessage(drift: Pick<Drift, 'kind' | 'name' | 'changes'>): string {
  return (
    `realip-webhook did not see this ${drift.kind} admitted (no replica answered and failurePolicy is Ignore): ` +
    `it lacks ${drift.changes.join(', ')}. Left alone because a new pod template rolls out new pods; ` +
    `${howToApply(drift.kind, drift.name)}.`
  );
}

export function repairedMessage(drift: Pick<Drift, 'changes'>): string {
  return (
    `realip-webhook set ${drift.changes.join(', ')} after the fact: this Service was admitted unmutated ` +
    '(no replica answered and failurePolicy is Ignore). This restarts no pods.'
  );
}

export function repairEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string, instance: string, now: Date) {
  const at = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: eventName(target), namespace: target.namespace },
    involvedObject: {
      apiVersion: target.apiVersion,
      kind: target.kind,
      namespace: target.namespace,
      name: target.name,
      uid: target.uid,
      resourceVersion: target.resourceVersion,
    },
    type,
    reason,
    message,
    source: { component: EVENT_COMPONENT },
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: instance.slice(0, 128),
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}
