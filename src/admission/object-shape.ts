// Checks the type of every field the features read, so that an ill-typed object (say `spec`
// a string) is answered with an error naming the field instead of failing inside a feature.
import { isService, workloadKind, type GroupKind, type WorkloadKind } from '../mutation/workload-kinds.js';
import { InvalidReviewError, typeName } from './invalid-review.js';

type Expected = 'object' | 'string' | 'array' | 'string-map';
/** A path below the object; '*' stands for each element of an array. */
type Check = readonly [path: readonly string[], expected: Expected];

function metadataChecks(at: readonly string[]): Check[] {
  return [
    [[...at, 'metadata'], 'object'],
    [[...at, 'metadata', 'annotations'], 'string-map'],
    [[...at, 'metadata', 'labels'], 'string-map'],
  ];
}

const SERVICE_CHECKS: Check[] = [
  [['spec', 'type'], 'string'],
  [['spec', 'externalTrafficPolicy'], 'string'],
];

function podTemplateChecks(templatePath: readonly string[]): Check[] {
  const anti = [...templatePath, 'spec', 'affinity', 'podAntiAffinity'];
  const required = [...anti, 'requiredDuringSchedulingIgnoredDuringExecution'];
  const preferred = [...anti, 'preferredDuringSchedulingIgnoredDuringExecution'];
  return [
    ...templatePath.map((_, i): Check => [templatePath.slice(0, i + 1), 'object']),
    ...metadataChecks(templatePath),
    [[...templatePath, 'spec'], 'object'],
    [[...templatePath, 'spec', 'affinity'], 'object'],
    [anti, 'object'],
    [required, 'array'],
    [[...required, '*'], 'object'],
    [[...required, '*', 'topologyKey'], 'string'],
    [preferred, 'array'],
    [[...preferred, '*'], 'object'],
    [[...preferred, '*', 'podAffinityTerm'], 'object'],
    [[...preferred, '*', 'podAffinityTerm', 'topologyKey'], 'string'],
    [['spec', 'selector'], 'object'],
    [['spec', 'selector', 'matchLabels'], 'string-map'],
    [['spec', 'selector', 'matchExpressions'], 'array'],
  ];
}

const BASE_CHECKS: Check[] = [...metadataChecks([]), [['spec'], 'object']];

function matches(value: unknown, expected: Expected): boolean {
  switch (expected) {
    case 'string':
      return typeof value === 'string';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeName(value) === 'object';
    case 'string-map':
      return typeName(value) === 'object' && Object.values(value as object).every((v) => typeof v === 'string');
  }
}

const DESCRIPTIONS: Record<Expected, string> = {
  object: 'an object',
  string: 'a string',
  array: 'an array',
  'string-map': 'a map of strings',
};

type Trail = (string | number)[];

function describePath(where: string, trail: Trail): string {
  return where + trail.map((step) => (typeof step === 'number' ? `[${step}]` : `.${step}`)).join('');
}

// Absent and null fields pass: the features treat them as not set; a list element must be there.
// A wrong parent stops the walk silently, because the parent's own check (listed first) reports
// it. The path is kept as a trail and only turned into text for an error, so a valid object (the
// usual case) builds no strings.
function checkAt(node: unknown, path: readonly string[], depth: number, expected: Expected, where: string, trail: Trail): void {
  const atEnd = depth === path.length;
  if (node === undefined || node === null) {
    if (!(atEnd && typeof trail[trail.length - 1] === 'number')) return;
  } else if (!atEnd) {
    const segment = path[depth]!;
    if (segment === '*') {
      if (!Array.isArray(node)) return;
      for (let i = 0; i < node.length; i++) {
        trail.push(i);
        checkAt(node[i], path, depth + 1, expected, where, trail);
        trail.pop();
      }
      return;
    }
    if (typeName(node) !== 'object') return;
    trail.push(segment);
    checkAt((node as Record<string, unknown>)[segment], path, depth + 1, expected, where, trail);
    trail.pop();
    return;
  } else if (matches(node, expected)) {
    return;
  }
  throw new InvalidReviewError(`${describePath(where, trail)} must be ${DESCRIPTIONS[expected]}, got ${typeName(node)}`);
}

// The checks of each kind are built once: rebuilding them per review cost as much as walking them.
const SERVICE_OBJECT_CHECKS: Check[] = [...BASE_CHECKS, ...SERVICE_CHECKS];
const WORKLOAD_CHECKS = new Map<WorkloadKind, Check[]>();

function checksFor(kind: GroupKind): Check[] {
  const workload = workloadKind(kind);
  if (!workload) return isService(kind) ? SERVICE_OBJECT_CHECKS : BASE_CHECKS;
  let checks = WORKLOAD_CHECKS.get(workload);
  if (!checks) WORKLOAD_CHECKS.set(workload, (checks = [...BASE_CHECKS, ...podTemplateChecks(workload.templatePath)]));
  return checks;
}

export function checkObjectShape(object: object, kind: GroupKind, where: string): void {
  const trail: Trail = [];
  for (const [path, expected] of checksFor(kind)) checkAt(object, path, 0, expected, where, trail);
}
