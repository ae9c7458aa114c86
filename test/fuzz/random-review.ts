// Bounded random mutations of valid AdmissionReviews, from a seeded PRNG so a failing case can be
// replayed: fields dropped, types changed, odd and huge strings, nulls, arrays, deep nesting,
// realip.io settings with valid and invalid values, and now and then a body that is not JSON.
import {
  cronJob,
  daemonSet,
  deployment,
  generateNamePod,
  job,
  pod,
  podTemplate,
  replicaSet,
  review,
  service,
  statefulSet,
} from '../fixtures/objects.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** mulberry32: a tiny 32-bit PRNG, good enough to spread cases and exactly replayable. */
export function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
  };
}
export type Random = ReturnType<typeof prng>;

/** Namespaces the server knows; 'unknown' is answered not-found, so the fail mode decides. */
export const NAMESPACE_LABELS: Record<string, Record<string, string>> = {
  demo: { 'realip.io/inject': 'enabled' },
  'demo-required-zone': {
    'realip.io/inject': 'enabled',
    'realip.io/anti-affinity': 'required',
    'realip.io/anti-affinity-topology': 'zone',
  },
  'demo-restricted': { 'realip.io/inject': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' },
  'demo-invalid': { 'realip.io/inject': 'enabled', 'realip.io/anti-affinity': 'sometimes', 'realip.io/istio-interception': '' },
  'opted-out': { 'realip.io/inject': 'disabled' },
  default: {},
};
const NAMESPACES = [...Object.keys(NAMESPACE_LABELS), 'unknown', ''];

const SETTINGS: Record<string, string[]> = {
  'realip.io/inject': ['enabled', 'disabled', 'Enabled', ''],
  'realip.io/external-traffic-policy': ['Local', 'Cluster', 'local', 'None'],
  'realip.io/anti-affinity': ['preferred', 'required', 'none', 'always'],
  'realip.io/anti-affinity-topology': ['hostname', 'zone', 'rack'],
  'realip.io/istio-interception': ['TPROXY', 'none', 'REDIRECT'],
  'sidecar.istio.io/interceptionMode': ['REDIRECT', 'TPROXY', 'NONE'],
};

const ODD_STRINGS = [
  '',
  ' ',
  '~/~0~1/',
  '/spec/template',
  '\u0000\u0001\u001f',
  'é漢字🙂',
  '\u202e\u200b\ufeff',
  '\ud800',
  '"}]',
  '__proto__',
  'constructor',
  '-1',
  '1e400',
  'null',
];

/** Anti-affinity a user wrote, for the mutations to take apart. */
const USER_AFFINITY = {
  podAntiAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: [
      { labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: 'topology.kubernetes.io/zone' },
    ],
    preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 10, podAffinityTerm: { labelSelector: { matchLabels: { tier: 'web' } }, topologyKey: 'example.com/rack' } },
    ],
  },
};

function validObject(random: Random): Json {
  return random.pick([
    () => deployment(),
    () => deployment({ template: podTemplate({ spec: { affinity: structuredClone(USER_AFFINITY) } }) }),
    () => deployment({ spec: { replicas: 5, selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['a'] }] } } }),
    () => statefulSet(),
    () => replicaSet(),
    () => daemonSet(),
    () => job(),
    () => cronJob(),
    () => cronJob('batch/v1beta1'),
    () => pod(),
    () => generateNamePod(),
    () => service('LoadBalancer'),
    () => service('NodePort'),
    () => service('ClusterIP'),
    () => service('ExternalName'),
  ])();
}

/** A valid review, as the API server would send it, before any mutation. */
export function validReview(random: Random, uid: string): Json {
  const object = validObject(random);
  const namespace = random.pick(NAMESPACES);
  const apiVersion = random.pick(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const);
  if (random.chance(0.3)) {
    const old = structuredClone(object);
    if (random.chance(0.5) && object.spec?.template) object.spec.template.metadata.labels.version = 'v2';
    return review(object, { operation: 'UPDATE', oldObject: old, namespace, apiVersion, uid });
  }
  return review(object, { operation: random.chance(0.05) ? 'DELETE' : 'CREATE', namespace, apiVersion, uid });
}

function randomString(random: Random): string {
  if (random.chance(0.05)) return 'x'.repeat(1 + random.int(256 * 1024));
  if (random.chance(0.5)) return random.pick(ODD_STRINGS);
  return Array.from({ length: random.int(40) }, () => String.fromCodePoint(random.int(0x2ffff))).join('');
}

function randomValue(random: Random, depth = 0): Json {
  switch (random.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return random.pick([0, -1, 1.5, 2 ** 53, -0, 1e308]);
    case 2:
      return random.chance(0.5);
    case 3:
    case 4:
    case 5:
      return randomString(random);
    case 6:
      return Array.from({ length: random.int(4) }, () => randomValue(random, depth + 1));
    case 7:
      return Object.fromEntries(Array.from({ length: random.int(4) }, () => [randomString(random), randomValue(random, depth + 1)]));
    default:
      return deeplyNested(random.int(200));
  }
}

function deeplyNested(depth: number): Json {
  let value: Json = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { nested: value };
  return value;
}

interface Slot {
  parent: Json;
  key: string | number;
}

/** Every (parent, key) in the tree, objects and arrays alike. */
function slots(root: Json): Slot[] {
  const found: Slot[] = [];
  const walk = (node: Json) => {
    if (node === null || typeof node !== 'object') return;
    for (const key of Array.isArray(node) ? node.keys() : Object.keys(node)) {
      found.push({ parent: node, key });
      walk(node[key]);
    }
  };
  walk(root);
  return found;
}

function setting(random: Random, body: Json): void {
  const object = body?.request?.object;
  if (object === null || typeof object !== 'object') return;
  const template = object.spec?.template ?? object.spec?.jobTemplate?.spec?.template ?? object;
  const target = random.chance(0.5) ? object : template;
  if (target === null || typeof target !== 'object') return;
  const key = random.pick(Object.keys(SETTINGS));
  target.metadata ??= {};
  if (typeof target.metadata !== 'object' || target.metadata === null) return;
  target.metadata.annotations ??= {};
  if (typeof target.metadata.annotations !== 'object' || target.metadata.annotations === null) return;
  target.metadata.annotations[key] = random.pick(SETTINGS[key]!);
}

/** One random change somewhere in the tree (or to the settings), in place. */
function mutateOnce(random: Random, body: Json): void {
  if (random.chance(0.25)) return setting(random, body);
  const all = slots(body);
  if (all.length === 0) return;
  const { parent, key } = random.pick(all);
  const value = parent[key];
  switch (random.int(6)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      return;
    case 1:
      parent[key] = null;
      return;
    case 2:
      // Change the type: a value becomes a list of itself, a list its first element, a string a number.
      parent[key] = Array.isArray(value) ? value[0] : typeof value === 'string' ? value.length : [value];
      return;
    case 3:
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) value[randomString(random)] = randomValue(random);
      else parent[key] = randomValue(random);
      return;
    default:
      parent[key] = randomValue(random);
  }
}

/** A valid review with 1-4 random changes, serialized; now and then cut short so it is not JSON. */
export function fuzzBody(random: Random, index: number): string {
  const body = validReview(random, `fuzz-${index}`);
  const changes = 1 + random.int(4);
  for (let i = 0; i < changes; i++) mutateOnce(random, body);
  const text = JSON.stringify(body);
  return random.chance(0.03) ? text.slice(0, random.int(text.length)) : text;
}
