// The ready endpoints of a Service and the Pods and workloads behind them, shared by the spread
// and in-the-pod hops.
import type { Readable } from './hop.js';
import { nameOf, type EndpointSlice, type Pod, type Workload } from './objects.js';

const HOSTNAME = 'kubernetes.io/hostname';
const ZONE = 'topology.kubernetes.io/zone';

export interface ReadyEndpoint {
  address: string;
  node: string | undefined;
  zone: string | undefined;
  pod: string | undefined;
}

/** Ready endpoints (a missing condition counts as ready, as kube-proxy reads it). */
export function readyEndpoints(slices: EndpointSlice[]): ReadyEndpoint[] {
  return slices.flatMap((slice) =>
    (slice.endpoints ?? [])
      .filter((e) => e.conditions?.ready !== false)
      .map((e) => ({
        address: e.addresses?.[0] ?? '',
        node: e.nodeName ?? e.topology?.[HOSTNAME],
        zone: e.zone ?? e.topology?.[ZONE],
        pod: e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined,
      })),
  );
}

export const zoneOf = (labels: Readonly<Record<string, string>> | undefined) => labels?.[ZONE];

/** The controller at the top of a Pod's owner chain (a ReplicaSet's Deployment), or undefined for a bare Pod. */
export function topOwner(pod: Pod, workloads: Readable<Workload[]>): Readable<Workload | undefined> {
  let owner = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
  if (!owner) return { ok: true, value: undefined };
  if (!workloads.ok) return workloads;
  let found: Workload | undefined;
  for (let depth = 0; owner && depth < 3; depth++) {
    const next = workloads.value.find((w) => w.kind === owner!.kind && nameOf(w) === owner!.name);
    if (!next) break;
    found = next;
    owner = next.metadata?.ownerReferences?.find((o) => o.controller === true);
  }
  if (!found) return { ok: false, reason: `its owner ${owner?.kind}/${owner?.name} was not found` };
  return { ok: true, value: found };
}
