// Object-by-object comparison of a `helm template` rendering with the matching kustomize
// rendering. Everything must be equal except the differences listed here, each by design.
import { isDeepStrictEqual } from 'node:util';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: Any;
}

/**
 * The differences allowed by design:
 * 1. Helm's standard metadata labels on every object (app.kubernetes.io/instance, version,
 *    managed-by, helm.sh/chart). Selectors and pod template labels stay identical.
 * 2. No Namespace object in the chart: Helm installs into the release namespace, which must exist
 *    before Helm stores the release in it (`helm install --namespace realip-system
 *    --create-namespace`). The chart instead refuses a release namespace that is opted in.
 * 3. Helm-generated certificates: the key material is new on each rendering, so the Secret's
 *    data values and the caBundle differ; the Secret's keys and type must still match, and in each
 *    rendering the caBundle must be the Secret's ca.crt (the caller checks that).
 */
export const HELM_STANDARD_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];
const KINDS_ONLY_IN_KUSTOMIZE = ['Namespace'];

function objectKey(o: K8sObject): string {
  return `${o.apiVersion} ${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

export interface DriftOptions {
  /** Helm-generated certificates on the helm side (difference 3). */
  generatedCertificates?: boolean;
}

/** Every difference beyond the allowed ones, one line each (empty: no drift). */
export function driftBetween(helm: K8sObject[], kustomize: K8sObject[], opts: DriftOptions = {}): string[] {
  const drift: string[] = [];
  const fromHelm = byKey(helm.map((o) => normalise(o, opts)), 'helm', drift);
  const fromKustomize = byKey(
    kustomize.filter((o) => !KINDS_ONLY_IN_KUSTOMIZE.includes(o.kind)).map((o) => normalise(o, opts)),
    'kustomize',
    drift,
  );
  for (const [key, k] of fromKustomize) {
    const h = fromHelm.get(key);
    if (!h) drift.push(`${key}: only in kustomize`);
    else diff(h, k, key, drift);
  }
  for (const key of fromHelm.keys()) if (!fromKustomize.has(key)) drift.push(`${key}: only in helm`);
  return drift;
}

function byKey(objs: K8sObject[], side: string, drift: string[]): Map<string, K8sObject> {
  const map = new Map<string, K8sObject>();
  for (const o of objs) {
    const key = objectKey(o);
    if (map.has(key)) drift.push(`${key}: twice in ${side}`);
    map.set(key, o);
  }
  return map;
}

function normalise(o: K8sObject, opts: DriftOptions): K8sObject {
  const copy: K8sObject = structuredClone(o);
  const labels = copy.metadata.labels;
  if (labels) for (const l of HELM_STANDARD_LABELS) delete labels[l];
  // Base64 wrapped over lines (kustomize) and on one line (Helm) are the same bytes.
  if (copy.kind === 'Secret' && copy.data) {
    for (const k of Object.keys(copy.data)) copy.data[k] = String(copy.data[k]).replace(/\s+/g, '');
  }
  for (const w of copy.kind === 'MutatingWebhookConfiguration' ? (copy.webhooks ?? []) : []) {
    if (w.clientConfig?.caBundle) w.clientConfig.caBundle = String(w.clientConfig.caBundle).replace(/\s+/g, '');
  }
  if (opts.generatedCertificates) {
    if (copy.kind === 'Secret' && copy.data) {
      for (const k of Object.keys(copy.data)) copy.data[k] = '(generated)';
    }
    if (copy.kind === 'MutatingWebhookConfiguration') {
      for (const w of copy.webhooks ?? []) if (w.clientConfig?.caBundle) w.clientConfig.caBundle = '(generated)';
    }
  }
  return copy;
}

/** Appends a line per differing path: `key: .spec.x: helm 1, kustomize 2`. */
function diff(h: Any, k: Any, path: string, drift: string[]): void {
  if (isDeepStrictEqual(h, k)) return;
  const bothObjects = isPlainObject(h) && isPlainObject(k);
  const bothArrays = Array.isArray(h) && Array.isArray(k) && h.length === k.length;
  if (bothObjects) {
    for (const f of new Set([...Object.keys(h), ...Object.keys(k)])) diff(h[f], k[f], `${path}.${f}`, drift);
  } else if (bothArrays) {
    h.forEach((item: Any, i: number) => diff(item, k[i], `${path}[${i}]`, drift));
  } else {
    drift.push(`${path}: helm ${JSON.stringify(h)}, kustomize ${JSON.stringify(k)}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
