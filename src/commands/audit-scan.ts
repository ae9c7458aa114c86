// The logic of `realip-webhook audit`, behind a small cluster interface: which existing objects
// differ from what the webhook would make of them today (mutate() as a CREATE; drift = a
// non-empty patch), and fixing the Services, which restarts no pods.
import type { AddOperation } from '../mutation/json-patch.js';
import { mutate } from '../mutation/mutate.js';
import type { KubeObject } from '../mutation/objects.js';
import type { Labels } from '../mutation/settings.js';
import { errorMessage } from '../errors.js';

export interface AuditedKind {
  kind: string;
  group: string;
  /** Versions to list, newest first: the first one the cluster serves is used. */
  apiVersions: readonly string[];
  /** Objects controlled by this kind are left to their owner, which is audited itself. */
  controlledBy?: string;
}

// Pods are not audited: the Istio annotation only acts when a Pod is created, and anti-affinity
// cannot be added to a running Pod; their controllers are audited instead.
export const AUDITED_KINDS: readonly AuditedKind[] = [
  { kind: 'Service', group: '', apiVersions: ['v1'] },
  { kind: 'Deployment', group: 'apps', apiVersions: ['apps/v1'] },
  { kind: 'StatefulSet', group: 'apps', apiVersions: ['apps/v1'] },
  { kind: 'ReplicaSet', group: 'apps', apiVersions: ['apps/v1'], controlledBy: 'Deployment' },
  { kind: 'DaemonSet', group: 'apps', apiVersions: ['apps/v1'] },
  { kind: 'Job', group: 'batch', apiVersions: ['batch/v1'], controlledBy: 'CronJob' },
  // batch/v1 CronJobs arrived in Kubernetes 1.21; older clusters serve only v1beta1.
  { kind: 'CronJob', group: 'batch', apiVersions: ['batch/v1', 'batch/v1beta1'] },
];

export interface ListedObject extends KubeObject {
  metadata?: KubeObject['metadata'] & {
    ownerReferences?: { kind?: string; name?: string; controller?: boolean }[];
    resourceVersion?: string;
    uid?: string;
    /** RFC 3339, whole seconds. */
    creationTimestamp?: string;
  };
}

export interface NamespaceInfo {
  name: string;
  labels: Labels;
}

/** What audit needs from a cluster; the CLI implements it with @kubernetes/client-node. */
export interface AuditCluster {
  namespacesWithLabel(selector: string): Promise<NamespaceInfo[]>;
  namespace(name: string): Promise<NamespaceInfo | undefined>;
  /** The first of `apiVersions` the cluster serves, or undefined when it serves none. */
  servedVersion(kind: string, apiVersions: readonly string[]): Promise<string | undefined>;
  list(apiVersion: string, kind: string, namespace: string): Promise<ListedObject[]>;
  /** A JSON patch, conditional on the resourceVersion that was audited. */
  patchService(namespace: string, name: string, resourceVersion: string | undefined, ops: AddOperation[]): Promise<void>;
}

/**
 * fixed: --fix services applied it. fixable: a Service, --fix services would apply it.
 * rollout: a workload; applying it changes the pod template and so rolls out new pods, which
 * audit never does. fix-failed: the Service patch was refused (see error).
 */
export type DriftAction = 'fixed' | 'fixable' | 'rollout' | 'fix-failed';

export interface Drift {
  namespace: string;
  apiVersion: string;
  kind: string;
  name: string;
  changes: string[];
  patch: AddOperation[];
  warnings: string[];
  /** Why a feature would leave the object alone (e.g. no TPROXY in an Istio ambient namespace). */
  skips: string[];
  action: DriftAction;
  error?: string;
}

export interface AuditReport {
  namespaces: { name: string; optedIn: boolean }[];
  /** Kinds the cluster serves in no known version, so they were not audited. */
  unservedKinds: string[];
  drift: Drift[];
}

export interface AuditOptions {
  labelPrefix: string;
  /** One namespace (-n), else every opted-in namespace. */
  namespace?: string | undefined;
  fixServices: boolean;
  /** Progress and notes for stderr. */
  log: (line: string) => void;
}

/** Progress lines are written from this many namespaces on. */
export const PROGRESS_MIN_NAMESPACES = 5;

export class NamespaceNotFoundError extends Error {
  override name = 'NamespaceNotFoundError';
}

function isControlledBy(object: ListedObject, kind: string | undefined): boolean {
  return kind !== undefined && (object.metadata?.ownerReferences ?? []).some((o) => o.controller === true && o.kind === kind);
}

/** Drift of one object: what mutate() would change on CREATE, or undefined when nothing. */
export function driftOf(
  object: ListedObject,
  audited: AuditedKind,
  apiVersion: string,
  namespace: NamespaceInfo,
  labelPrefix: string,
): Omit<Drift, 'action'> | undefined {
  if (isControlledBy(object, audited.controlledBy)) return undefined;
  const result = mutate({
    kind: { group: audited.group, kind: audited.kind },
    operation: 'CREATE',
    object,
    namespaceLabels: namespace.labels,
    labelPrefix,
  });
  if (result.ops.length === 0) return undefined;
  return {
    namespace: namespace.name,
    apiVersion,
    kind: audited.kind,
    name: object.metadata?.name ?? '',
    changes: result.changes,
    patch: result.ops,
    warnings: result.warnings,
    skips: result.skips,
  };
}

export async function runAudit(cluster: AuditCluster, options: AuditOptions): Promise<AuditReport> {
  const injectKey = `${options.labelPrefix}/inject`;
  let namespaces: NamespaceInfo[];
  if (options.namespace !== undefined) {
    const found = await cluster.namespace(options.namespace);
    if (!found) throw new NamespaceNotFoundError(`namespace ${options.namespace} not found`);
    if (found.labels[injectKey] !== 'enabled') {
      options.log(`namespace ${found.name} is not opted in (no label ${injectKey}=enabled): the webhook changes nothing there`);
    }
    namespaces = [found];
  } else {
    namespaces = await cluster.namespacesWithLabel(`${injectKey}=enabled`);
    if (namespaces.length === 0) options.log(`no namespace has the label ${injectKey}=enabled`);
  }

  const versions = new Map<AuditedKind, string>();
  const unservedKinds: string[] = [];
  for (const audited of AUDITED_KINDS) {
    const version = await cluster.servedVersion(audited.kind, audited.apiVersions);
    if (version) versions.set(audited, version);
    else unservedKinds.push(audited.kind);
  }
  if (unservedKinds.length > 0) options.log(`not audited, the cluster serves none of their versions: ${unservedKinds.join(', ')}`);

  const drift: Drift[] = [];
  for (const [i, namespace] of namespaces.entries()) {
    if (namespaces.length >= PROGRESS_MIN_NAMESPACES) {
      options.log(`scanning namespace ${i + 1}/${namespaces.length}: ${namespace.name}`);
    }
    for (const [audited, apiVersion] of versions) {
      for (const object of await cluster.list(apiVersion, audited.kind, namespace.name)) {
        const found = driftOf(object, audited, apiVersion, namespace, options.labelPrefix);
        if (!found) continue;
        if (audited.kind !== 'Service') {
          drift.push({ ...found, action: 'rollout' });
        } else if (!options.fixServices) {
          drift.push({ ...found, action: 'fixable' });
        } else {
          try {
            await cluster.patchService(namespace.name, found.name, object.metadata?.resourceVersion, found.patch);
            drift.push({ ...found, action: 'fixed' });
          } catch (err) {
            drift.push({ ...found, action: 'fix-failed', error: errorMessage(err) });
          }
        }
      }
    }
  }
  return {
    namespaces: namespaces.map((n) => ({ name: n.name, optedIn: n.labels[injectKey] === 'enabled' })),
    unservedKinds,
    drift,
  };
}

/** Drift that is still there after the run: everything but the Services that were fixed. */
export function remainingDrift(report: AuditReport): Drift[] {
  return report.drift.filter((d) => d.action !== 'fixed');
}

const NOTES: Record<DriftAction, string> = {
  fixed: 'fixed',
  fixable: 'restarts no pods: --fix services applies it',
  rollout: 'applying it would trigger a rollout (new pods); left alone',
  'fix-failed': 'fix failed',
};

export function formatTable(report: AuditReport): string {
  const rows = report.drift.map((d) => [
    d.namespace,
    d.kind,
    d.name,
    d.changes.join(','),
    d.error ? `${NOTES[d.action]}: ${d.error}` : NOTES[d.action],
  ]);
  const lines: string[] = [];
  if (rows.length > 0) {
    const all = [['NAMESPACE', 'KIND', 'NAME', 'WOULD CHANGE', 'NOTE'], ...rows];
    const widths = all[0]!.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
    for (const row of all) lines.push(row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
    lines.push('');
  }
  const scanned = `${report.namespaces.length} namespace${report.namespaces.length === 1 ? '' : 's'}`;
  const fixed = report.drift.filter((d) => d.action === 'fixed').length;
  const remaining = remainingDrift(report).length;
  if (report.drift.length === 0) lines.push(`No drift in ${scanned}: every Service and workload is as the webhook would make it.`);
  else {
    lines.push(
      `${report.drift.length} object(s) in ${scanned} differ from what the webhook would make` +
        (fixed > 0 ? `; ${fixed} Service(s) fixed, ${remaining} left.` : '.'),
    );
  }
  return lines.join('\n') + '\n';
}
