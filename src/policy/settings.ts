// The settings of src/mutation/settings.ts as CEL variables: where a value comes from (pod
// template, object, namespace; most specific first), whether it is allowed, and the warning for
// an invalid one, built from the same definitions and message functions as the webhook's.
import {
  INJECT_VALUES,
  invalidInjectWarning,
  invalidSettingWarning,
  SETTINGS,
  type SettingName,
} from '../mutation/settings.js';
import { jsonQuoted, list, lit, message, type Cel } from './cel.js';

export interface Variable {
  name: string;
  expression: Cel;
}

export const ref = (name: string): Cel => `variables.${name}`;

/** One place a setting can be written: how a user would name it, and the CEL map of its values. */
export interface Source {
  where: Cel;
  values: Cel;
}

/** `{"where": ..., "raw": ...}` of the first source whose value for `key` is set and not `passes`. */
function firstSource(key: string, sources: readonly Source[], fallback: { where: string; raw: string }, passes?: string): Cel {
  let expr = `{"where": ${lit(fallback.where)}, "raw": ${lit(fallback.raw)}}`;
  for (const { where, values } of [...sources].reverse()) {
    const present = passes === undefined ? `${lit(key)} in ${values}` : `${lit(key)} in ${values} && ${values}[${lit(key)}] != ${lit(passes)}`;
    // string(): map literals must be of one type, and annotation values are dyn to the compiler.
    expr = `(${present} ? {"where": string(${where}), "raw": string(${values}[${lit(key)}])} : ${expr})`;
  }
  return expr;
}

/** camelCase of a setting name, as a CEL variable name: anti-affinity -> antiAffinity. */
export function variableName(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function settingVariable(prefix: string, name: SettingName, sources: readonly Source[]): Variable {
  const key = `${prefix}/${name}`;
  return { name: variableName(name), expression: firstSource(key, sources, { where: 'default', raw: SETTINGS[name].default }) };
}

export const settingValue = (name: SettingName): Cel => `${ref(variableName(name))}.raw`;

export function settingValid(name: SettingName): Cel {
  return `${settingValue(name)} in ${list(SETTINGS[name].allowed)}`;
}

export function invalidSettingMessage(prefix: string, name: SettingName): Cel {
  const { allowed } = SETTINGS[name];
  const v = ref(variableName(name));
  const text = message(
    (where: string, quoted: string) => invalidSettingWarning(where, `${prefix}/${name}`, quoted, allowed, name),
    `${v}.where`,
    jsonQuoted(`${v}.raw`),
  );
  // Quoting the value is the costly part: only for an invalid one.
  return `${settingValid(name)} ? "" : ${text}`;
}

const [ENABLED, DISABLED] = INJECT_VALUES;

/**
 * The opt-out: the first annotation whose `<prefix>/inject` is not "enabled". The namespace label
 * is enabled by then: the policies' namespaceSelector matches nothing else.
 */
export function injectVariable(prefix: string, annotations: readonly Source[]): Variable {
  return { name: 'inject', expression: firstSource(`${prefix}/inject`, annotations, { where: '', raw: ENABLED }, ENABLED) };
}

export const injected = `${ref('inject')}.raw == ${lit(ENABLED)}`;
export const injectInvalid = `!(${ref('inject')}.raw in ${list([ENABLED, DISABLED])})`;

export function invalidInjectMessage(prefix: string): Cel {
  const text = message((where: string, quoted: string) => invalidInjectWarning(where, `${prefix}/inject`, quoted), `${ref('inject')}.where`, jsonQuoted(`${ref('inject')}.raw`));
  return `${injectInvalid} ? ${text} : ""`;
}
