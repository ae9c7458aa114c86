// Which kinds the webhook changes and where their pod template lives. Kinds are matched by
// API group and kind, never by version: a CronJob arrives as batch/v1 or batch/v1beta1.

export interface WorkloadKind {
  groups: readonly string[];
  /** Path from the object to its pod template; empty for a Pod, which is its own template. */
  templatePath: readonly string[];
  antiAffinity: boolean;
  /** Pods are only changed on CREATE: Istio reads the annotation when the Pod is created. */
  createOnly: boolean;
}

const TEMPLATE = ['spec', 'template'];
// extensions/v1beta1 still reaches webhooks of clusters that serve it, under matchPolicy Equivalent.
const APPS = ['apps', 'extensions'];

export const WORKLOAD_KINDS: Readonly<Record<string, WorkloadKind>> = {
  Deployment: { groups: APPS, templatePath: TEMPLATE, antiAffinity: true, createOnly: false },
  StatefulSet: { groups: ['apps'], templatePath: TEMPLATE, antiAffinity: true, createOnly: false },
  ReplicaSet: { groups: APPS, templatePath: TEMPLATE, antiAffinity: true, createOnly: false },
  DaemonSet: { groups: APPS, templatePath: TEMPLATE, antiAffinity: false, createOnly: false },
  Job: { groups: ['batch'], templatePath: TEMPLATE, antiAffinity: false, createOnly: false },
  CronJob: {
    groups: ['batch'],
    templatePath: ['spec', 'jobTemplate', 'spec', 'template'],
    antiAffinity: false,
    createOnly: false,
  },
  Pod: { groups: [''], templatePath: [], antiAffinity: false, createOnly: true },
};

export interface GroupKind {
  group: string;
  kind: string;
}

export function isService({ group, kind }: GroupKind): boolean {
  return group === '' && kind === 'Service';
}

export function workloadKind({ group, kind }: GroupKind): WorkloadKind | undefined {
  const rule = Object.hasOwn(WORKLOAD_KINDS, kind) ? WORKLOAD_KINDS[kind] : undefined;
  return rule?.groups.includes(group) ? rule : undefined;
}
