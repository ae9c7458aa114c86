// Resolves what each feature should do for one object, from the namespace labels and the
// annotations on the object and its pod template. An invalid value is never guessed at: the
// feature is off for that object and a warning names the key and the allowed values.
import { WARNING_PREFIX } from './feature.js';

export const SETTINGS = {
  'external-traffic-policy': { allowed: ['Local', 'Cluster'], default: 'Local' },
  'anti-affinity': { allowed: ['preferred', 'required', 'none'], default: 'preferred' },
  'anti-affinity-topology': { allowed: ['hostname', 'zone'], default: 'hostname' },
  'istio-interception': { allowed: ['TPROXY', 'none'], default: 'TPROXY' },
} as const;

export type SettingName = keyof typeof SETTINGS;
export type SettingValue<N extends SettingName> = (typeof SETTINGS)[N]['allowed'][number];
export type Labels = Readonly<Record<string, string>>;

/** One place a setting can be written, most specific first when several are given. */
export interface SettingSource {
  /** How a user would name it, e.g. "namespace label" or "annotation on the pod template". */
  where: string;
  values: Labels | undefined;
}

export type Resolved<N extends SettingName> =
  | { valid: true; value: SettingValue<N>; from: string }
  | { valid: false; warning: string };

export function resolveSetting<N extends SettingName>(
  prefix: string,
  name: N,
  sources: readonly SettingSource[],
): Resolved<N> {
  const key = `${prefix}/${name}`;
  const spec = SETTINGS[name];
  for (const source of sources) {
    const raw = source.values?.[key];
    if (raw === undefined) continue;
    if ((spec.allowed as readonly string[]).includes(raw)) {
      return { valid: true, value: raw as SettingValue<N>, from: `${source.where} ${key}` };
    }
    return {
      valid: false,
      warning: `${WARNING_PREFIX}${source.where} ${key}=${JSON.stringify(raw)} is invalid (allowed: ${spec.allowed.join(', ')}); ${name} not applied`,
    };
  }
  // Stryker disable next-line StringLiteral: no default is none or Cluster, the only values whose skip reason shows where they came from
  return { valid: true, value: spec.default as SettingValue<N>, from: 'default' };
}

export const INJECT_VALUES = ['enabled', 'disabled'] as const;

/**
 * The opt-in switch: the namespace label must say enabled and no annotation may say disabled.
 * Returns why the object is skipped, with a warning when a value is invalid.
 */
export function whyNotInjected(
  prefix: string,
  namespaceLabels: Labels,
  annotationSources: readonly SettingSource[],
): { skip: string; warning?: string } | undefined {
  const key = `${prefix}/inject`;
  const invalid = (where: string, raw: string) => ({
    skip: `${where} ${key}=${JSON.stringify(raw)} is invalid`,
    warning: `${WARNING_PREFIX}${where} ${key}=${JSON.stringify(raw)} is invalid (allowed: ${INJECT_VALUES.join(', ')}); object left unchanged`,
  });
  const nsValue = namespaceLabels[key];
  if (nsValue === undefined) return { skip: `namespace has no label ${key}` };
  if (nsValue === 'disabled') return { skip: `namespace label ${key}=disabled` };
  if (nsValue !== 'enabled') return invalid('namespace label', nsValue);
  for (const source of annotationSources) {
    const raw = source.values?.[key];
    if (raw === undefined || raw === 'enabled') continue;
    if (raw === 'disabled') return { skip: `${source.where} ${key}=disabled` };
    return invalid(source.where, raw);
  }
  return undefined;
}
