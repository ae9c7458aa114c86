// The objects both engines get: every object of the e2e scenarios (test/e2e/webhook.test.ts, with
// their namespace labels), then a seeded generator of workloads and Services that covers what the
// e2e scenarios only sample: selectors with matchExpressions, existing affinity of each shape,
// existing annotations, every label value valid and invalid, every override, CREATE and UPDATE.
// Label and annotation keys are written with the webhook's prefix, realip.io; the suite rewrites
// them for the policies' prefix.
import { TOPOLOGY_KEYS } from '../../src/mutation/anti-affinity.js';
import { DATAPLANE_MODE_LABEL, INTERCEPTION_ANNOTATION, POD_SECURITY_ENFORCE_LABEL, SIDECAR_INJECT } from '../../src/mutation/istio-interception.js';
import { SETTINGS, type SettingName } from '../../src/mutation/settings.js';
import { cronJob, deployment, job, pod, podTemplate, restricted, service, workload } from '../e2e/manifests.js';
import type { Obj } from '../e2e/webhook-harness.js';

export const PREFIX = 'realip.io';
const ENABLED = { [`${PREFIX}/inject`]: 'enabled' };

export interface Case {
  name: string;
  /** Labels of the namespace the object is created in (the opt-in included). */
  labels: Record<string, string>;
  object: Obj;
  /** An UPDATE: the object is created for real, then replaced with update(stored). */
  update?: { name: string; change: (stored: Obj) => Obj };
}

const templateOf = (o: Obj): Obj => (o.kind === 'Pod' ? o : o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template);

function changeImage(stored: Obj): Obj {
  const o = structuredClone(stored);
  templateOf(o).spec.containers[0].image = 'registry.k8s.io/echoserver:1.10';
  return o;
}

function withLabel(stored: Obj): Obj {
  const o = structuredClone(stored);
  o.metadata.labels = { ...o.metadata.labels, team: 'payments' };
  return o;
}

/** The opt-out removed together with a template change: the first mutation comes with an UPDATE. */
function optIn(stored: Obj): Obj {
  const o = changeImage(stored);
  for (const meta of [o.metadata, templateOf(o).metadata]) delete meta.annotations?.[`${PREFIX}/inject`];
  return o;
}

function withReplicas(stored: Obj): Obj {
  const o = structuredClone(stored);
  o.spec.replicas = 3;
  return o;
}

/** The e2e scenarios' objects, each with the namespace labels of its scenario. */
export function e2eCases(): Case[] {
  const cases: Case[] = [];
  const add = (labels: Record<string, string>, ...objects: Obj[]) => {
    for (const object of objects) cases.push({ name: `e2e ${object.kind} ${object.metadata.name ?? object.metadata.generateName}`, labels, object });
  };
  // Walkthrough: kubectl create deployment, kubectl expose (NodePort, LoadBalancer, ClusterIP).
  const walkthrough = deployment('source-ip-app', '');
  walkthrough.metadata.labels = { app: 'source-ip-app' };
  walkthrough.spec.template.spec.containers[0].name = 'echoserver';
  add(ENABLED, walkthrough, service('source-ip-nodeport', '', 'NodePort'), service('source-ip-lb', '', 'LoadBalancer'), service('source-ip-clusterip', '', 'ClusterIP'));
  // Every workload kind.
  add(ENABLED, ...(['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet'] as const).map((k) => workload(k, k.toLowerCase(), '')), job('job', ''), cronJob('cron', ''));
  add(ENABLED, pod('bare', ''), pod('gen', '', { generateName: true }));
  // Not opted in (the namespace has no label): nothing reaches either engine.
  add({}, deployment('web', ''), service('web', '', 'NodePort'), pod('bare', ''));
  // Each namespace label value.
  const settings: Record<string, string>[] = [
    { [`${PREFIX}/inject`]: 'disabled' },
    { 'external-traffic-policy': 'Local' },
    { 'external-traffic-policy': 'Cluster' },
    { 'anti-affinity': 'preferred' },
    { 'anti-affinity': 'required' },
    { 'anti-affinity': 'none' },
    { 'anti-affinity-topology': 'hostname' },
    { 'anti-affinity-topology': 'zone' },
    { 'anti-affinity': 'required', 'anti-affinity-topology': 'zone' },
    { 'istio-interception': 'TPROXY' },
    { 'istio-interception': 'none' },
    { 'anti-affinity': 'sometimes' },
  ];
  for (const s of settings) {
    const labels = Object.fromEntries(Object.entries(s).map(([k, v]) => [k.includes('/') ? k : `${PREFIX}/${k}`, v]));
    add({ ...ENABLED, ...labels }, deployment('web', ''), service('web', '', 'NodePort'));
  }
  // Pod Security.
  add({ ...ENABLED, [POD_SECURITY_ENFORCE_LABEL]: 'restricted' }, deployment('web', ''), restricted(pod('bare', '')));
  add({ ...ENABLED, [POD_SECURITY_ENFORCE_LABEL]: 'privileged' }, deployment('web', ''));
  // Per-object overrides.
  const nodeAffinity = {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }],
    },
  };
  const zoneTerm = { weight: 50, podAffinityTerm: { labelSelector: { matchLabels: { app: 'merged' } }, topologyKey: TOPOLOGY_KEYS.zone } };
  const sameKeyTerm = { labelSelector: { matchLabels: { tier: 'web' } }, topologyKey: TOPOLOGY_KEYS.hostname };
  add(
    ENABLED,
    deployment('object-opt-out', '', { objectAnnotations: { [`${PREFIX}/inject`]: 'disabled' } }),
    deployment('template-opt-out', '', { annotations: { [`${PREFIX}/inject`]: 'disabled' } }),
    service('opt-out', '', 'NodePort', { [`${PREFIX}/inject`]: 'disabled' }),
    deployment('redirect', '', { annotations: { [INTERCEPTION_ANNOTATION]: 'REDIRECT' } }),
    deployment('merged', '', { affinity: { nodeAffinity, podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [zoneTerm] } } }),
    deployment('same-key', '', { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [sameKeyTerm] } } }),
    service('keep-cluster', '', 'LoadBalancer', { [`${PREFIX}/external-traffic-policy`]: 'Cluster' }),
    deployment('required', '', { objectAnnotations: { [`${PREFIX}/anti-affinity`]: 'required' } }),
  );
  // The rollout scenario's updates: a label (template unchanged), then a new image.
  for (const update of [{ name: 'label', change: withLabel }, { name: 'set image', change: changeImage }, { name: 'replicas', change: withReplicas }]) {
    cases.push({ name: `e2e UPDATE ${update.name} of Deployment rollout`, labels: ENABLED, object: deployment('rollout', ''), update });
  }
  // anti-affinity=none with a NodePort Service: the Local-without-spread warning.
  add({ ...ENABLED, [`${PREFIX}/anti-affinity`]: 'none' }, service('web', '', 'NodePort'));
  return cases;
}

/** mulberry32: a small seeded generator, so a failing case can be run again. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` generated cases from `seed`. */
export function generatedCases(seed: number, count: number): Case[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const chance = (p: number) => next() < p;
  const settingNames = Object.keys(SETTINGS) as SettingName[];
  // Valid values, an invalid one, and absent (the default).
  const valueOf = (name: SettingName) => pick([...SETTINGS[name].allowed, 'bogus', undefined, undefined]);
  const settingsMap = (p: number) => {
    const out: Record<string, string> = {};
    for (const name of settingNames) {
      if (!chance(p)) continue;
      const v = valueOf(name);
      if (v !== undefined) out[`${PREFIX}/${name}`] = v;
    }
    return out;
  };
  const injectAnnotation = (): Record<string, string> => (chance(0.15) ? { [`${PREFIX}/inject`]: pick(['disabled', 'enabled', 'off']) } : {});

  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const labels: Record<string, string> = { ...ENABLED, ...settingsMap(0.5) };
    if (chance(0.2)) labels[POD_SECURITY_ENFORCE_LABEL] = pick(['privileged', 'baseline', 'restricted']);
    if (chance(0.15)) labels[DATAPLANE_MODE_LABEL] = 'ambient';
    const name = `g${i}`;
    if (chance(0.25)) {
      const type = pick(['NodePort', 'LoadBalancer', 'ClusterIP'] as const);
      const svc = service(name, '', type, { ...settingsMap(0.3), ...injectAnnotation() });
      if (type !== 'ClusterIP' && chance(0.2)) svc.spec.externalTrafficPolicy = pick(['Local', 'Cluster']);
      const update = chance(0.3) ? { name: 'label', change: withLabel } : undefined;
      cases.push({ name: `generated ${type} Service ${name}`, labels, object: svc, ...(update && { update }) });
      continue;
    }
    const kind = pick(['Deployment', 'Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet', 'Job', 'CronJob', 'Pod'] as const);
    const templateAnnotations: Record<string, string> = { ...settingsMap(0.25), ...injectAnnotation() };
    if (chance(0.15)) templateAnnotations[INTERCEPTION_ANNOTATION] = pick(['TPROXY', 'REDIRECT']);
    if (chance(0.15)) templateAnnotations[SIDECAR_INJECT] = pick(['true', 'false']);
    const affinity = pick([
      undefined,
      undefined,
      {},
      { podAntiAffinity: {} },
      { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } }] } },
      { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: name } }, topologyKey: pick(Object.values(TOPOLOGY_KEYS)) }] } },
      { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, podAffinityTerm: { labelSelector: { matchLabels: { other: 'x' } }, topologyKey: pick([...Object.values(TOPOLOGY_KEYS), 'rack']) } }] } },
      { podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 5, podAffinityTerm: { labelSelector: { matchLabels: { db: 'x' } }, topologyKey: TOPOLOGY_KEYS.zone } }] } },
    ]);
    const options = { annotations: templateAnnotations, ...(affinity && { affinity: structuredClone(affinity) }) };
    let object: Obj;
    if (kind === 'Pod') {
      object = pod(name, '', options);
      if (labels[POD_SECURITY_ENFORCE_LABEL] === 'restricted') object = restricted(object);
    } else if (kind === 'Job' || kind === 'CronJob') {
      object = kind === 'Job' ? job(name, '') : cronJob(name, '');
      const template = templateOf(object);
      Object.assign(template, podTemplate(name, { ...options, restartPolicy: 'Never' }));
    } else {
      object = workload(kind, name, '', { ...options, objectAnnotations: { ...settingsMap(0.2), ...injectAnnotation() } });
      const selector = pick([
        { matchLabels: { app: name } },
        { matchLabels: { app: name }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }] },
        { matchExpressions: [{ key: 'app', operator: 'In', values: [name] }, { key: 'canary', operator: 'DoesNotExist' }] },
      ]);
      object.spec.selector = selector;
      object.spec.template.metadata.labels = { app: name, tier: 'web' };
    }
    if (object.metadata.annotations && Object.keys(object.metadata.annotations).length === 0) delete object.metadata.annotations;
    if (Object.keys(templateOf(object).metadata.annotations ?? {}).length === 0) delete templateOf(object).metadata.annotations;
    const canUpdate = kind !== 'Pod' && kind !== 'Job';
    const update = canUpdate && chance(0.35) ? pick([{ name: 'label', change: withLabel }, { name: 'set image', change: changeImage }, { name: 'opt in', change: optIn }]) : undefined;
    cases.push({ name: `generated ${kind} ${name}`, labels, object, ...(update && { update }) });
  }
  return cases;
}
