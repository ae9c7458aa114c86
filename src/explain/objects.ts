// The few fields of the objects explain reads, as the API server returns them. Optional
// everywhere: a cluster may hold objects written by hand with any field missing.
import type { KubeObject, ObjectMeta } from '../mutation/objects.js';
import type { Labels } from '../mutation/settings.js';

export interface Meta extends ObjectMeta {
  ownerReferences?: { kind?: string; name?: string; controller?: boolean }[];
}

export interface Service {
  metadata?: Meta;
  spec?: {
    type?: string;
    selector?: Labels;
    externalTrafficPolicy?: string;
    healthCheckNodePort?: number;
    ports?: { port?: number; nodePort?: number }[];
  };
}

export interface EndpointSlice {
  metadata?: Meta;
  endpoints?: {
    addresses?: string[];
    conditions?: { ready?: boolean | null };
    /** discovery.k8s.io/v1 */
    nodeName?: string;
    zone?: string;
    /** discovery.k8s.io/v1beta1 (Kubernetes 1.20) names node and zone here. */
    topology?: Labels;
    targetRef?: { kind?: string; name?: string };
  }[];
}

export interface Node {
  metadata?: Meta;
  spec?: { unschedulable?: boolean };
  status?: { conditions?: { type?: string; status?: string }[] };
}

export interface Container {
  name?: string;
  args?: string[];
  env?: { name?: string; value?: string }[];
  restartPolicy?: string;
}

export interface Pod {
  metadata?: Meta;
  spec?: { nodeName?: string; containers?: Container[]; initContainers?: Container[] };
}

/** A Deployment, ReplicaSet, StatefulSet or DaemonSet: what owns the Pods. */
export interface Workload extends KubeObject {
  metadata?: Meta;
}

export interface IngressBackend {
  service?: { name?: string };
}

export interface Ingress {
  metadata?: Meta;
  spec?: {
    ingressClassName?: string;
    defaultBackend?: IngressBackend;
    rules?: { http?: { paths?: { backend?: IngressBackend }[] } }[];
  };
}

export interface IngressClass {
  metadata?: Meta;
  spec?: { controller?: string };
}

export interface ParentRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface HTTPRoute {
  metadata?: Meta;
  spec?: {
    parentRefs?: ParentRef[];
    rules?: { backendRefs?: { group?: string; kind?: string; name?: string; namespace?: string }[] }[];
  };
}

export interface Gateway {
  metadata?: Meta;
  spec?: { gatewayClassName?: string };
}

export interface GatewayClass {
  metadata?: Meta;
  spec?: { controllerName?: string };
}

export interface ConfigMap {
  metadata?: Meta;
  data?: Labels;
}

export const nameOf = (o: { metadata?: Meta } | undefined): string => o?.metadata?.name ?? '';
export const namespaceOf = (o: { metadata?: Meta } | undefined): string => o?.metadata?.namespace ?? '';
export const ref = (o: { metadata?: Meta }): string => `${namespaceOf(o)}/${nameOf(o)}`;
