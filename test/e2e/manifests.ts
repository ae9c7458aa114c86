// The objects of the e2e scenarios (test/e2e/webhook.test.ts), as kubectl would send them. The
// engines suite (test/engines) runs the same objects through the webhook and the policies.
import { atLeast } from '../kubernetes/release.js';
import type { Obj } from './webhook-harness.js';

export const IMAGE = 'registry.k8s.io/echoserver:1.4';
export const HOSTNAME = 'kubernetes.io/hostname';
export const ZONE = 'topology.kubernetes.io/zone';

export function namespace(name: string, labels: Record<string, string> = {}): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export interface PodTemplateOptions {
  annotations?: Record<string, string>;
  affinity?: Obj;
  restartPolicy?: string;
}

export function podTemplate(app: string, o: PodTemplateOptions = {}): Obj {
  return {
    metadata: { labels: { app }, ...(o.annotations && { annotations: o.annotations }) },
    spec: {
      containers: [{ name: 'app', image: IMAGE }],
      ...(o.affinity && { affinity: o.affinity }),
      ...(o.restartPolicy && { restartPolicy: o.restartPolicy }),
    },
  };
}

export interface WorkloadOptions extends PodTemplateOptions {
  replicas?: number;
  /** Annotations on the workload object itself (not its pod template). */
  objectAnnotations?: Record<string, string>;
  strategy?: Obj;
}

export function workload(kind: 'Deployment' | 'StatefulSet' | 'ReplicaSet' | 'DaemonSet', name: string, ns: string, o: WorkloadOptions = {}): Obj {
  const spec: Obj = { selector: { matchLabels: { app: name } }, template: podTemplate(name, o) };
  if (kind !== 'DaemonSet') spec.replicas = o.replicas ?? 1;
  if (kind === 'StatefulSet') spec.serviceName = name;
  if (o.strategy) spec.strategy = o.strategy;
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name, namespace: ns, ...(o.objectAnnotations && { annotations: o.objectAnnotations }) },
    spec,
  };
}

export const deployment = (name: string, ns: string, o: WorkloadOptions = {}) => workload('Deployment', name, ns, o);

export function job(name: string, ns: string): Obj {
  return { apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: ns }, spec: { template: podTemplate(name, { restartPolicy: 'Never' }) } };
}

// Kubernetes 1.20 serves CronJob as batch/v1beta1 only (batch/v1 from 1.21); the shipped rule matches batch/*.
export const CRONJOB_VERSION = atLeast('1.21') ? 'batch/v1' : 'batch/v1beta1';
export function cronJob(name: string, ns: string): Obj {
  return {
    apiVersion: CRONJOB_VERSION,
    kind: 'CronJob',
    metadata: { name, namespace: ns },
    spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template: podTemplate(name, { restartPolicy: 'Never' }) } } },
  };
}

export function pod(name: string, ns: string, o: PodTemplateOptions & { generateName?: boolean } = {}): Obj {
  const { metadata, spec } = podTemplate(name, o);
  const naming = o.generateName ? { generateName: `${name}-` } : { name };
  return { apiVersion: 'v1', kind: 'Pod', metadata: { ...naming, namespace: ns, ...metadata }, spec };
}

/** A Pod that the restricted Pod Security level admits. */
export function restricted(p: Obj): Obj {
  const container = { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } };
  p.spec.securityContext = { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } };
  p.spec.containers = (p.spec.containers as Obj[]).map((c) => ({ ...c, ...container }));
  return p;
}

export function service(name: string, ns: string, type: 'NodePort' | 'LoadBalancer' | 'ClusterIP', annotations?: Record<string, string>): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, ...(annotations && { annotations }) },
    spec: { type, selector: { app: name }, ports: [{ port: 8080, targetPort: 8080 }] },
  };
}

export function readyNode(name: string, zone: string): Obj {
  const now = new Date().toISOString();
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { [HOSTNAME]: name, [ZONE]: zone } },
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'e2e node', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  };
}
