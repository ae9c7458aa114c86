// The few fields of Kubernetes objects the webhook reads. Shapes are checked on arrival
// (admission/object-shape.ts), so these types hold for every object that reaches a feature.
import type { Labels } from './settings.js';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Labels;
  annotations?: Labels;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: Record<string, unknown>;
}

export interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: unknown[];
}

export interface PodAffinityTerm {
  labelSelector?: LabelSelector;
  topologyKey?: string;
}

export interface PodAntiAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  preferredDuringSchedulingIgnoredDuringExecution?: { weight?: number; podAffinityTerm?: PodAffinityTerm }[];
}

export interface PodTemplate {
  metadata?: ObjectMeta;
  spec?: { affinity?: { podAntiAffinity?: PodAntiAffinity | null } | null } & Record<string, unknown>;
}

/** The value at `path` below `root`, or undefined where any step is missing. */
export function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const segment of path) {
    if (node === undefined || node === null) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

export function objectName(object: KubeObject): string {
  const meta = object.metadata;
  return meta?.name || (meta?.generateName ? `${meta.generateName}*` : '');
}
