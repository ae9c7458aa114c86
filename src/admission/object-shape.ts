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

/**
 * The checks of a kind merged into one tree, so a review is walked once: walking each path from
 * the root read the same fields again and again, and cost more than any other step of ours.
 */
interface ShapeNode {
  /** A field name, or '*' for each element of an array. */
  key: string;
  expected: Expected | undefined;
  fields: ShapeNode[];
  elements: ShapeNode | undefined;
}

// The merging is for speed only: a tree with a branch of its own for each check (what the disabled
// mutants build) checks the same fields with the same errors.
function shapeTree(checks: readonly Check[]): ShapeNode {
  // Stryker disable next-line StringLiteral,ArrayDeclaration: the root's key is never read, nor its fields but through find
  const root: ShapeNode = { key: '', expected: undefined, fields: [], elements: undefined };
  for (const [path, expected] of checks) {
    let node = root;
    for (const key of path) {
      // Stryker disable next-line all: see above
      let child = key === '*' ? node.elements : node.fields.find((f) => f.key === key);
      // Stryker disable next-line ConditionalExpression: see above
      if (!child) {
        // Stryker disable next-line ArrayDeclaration: a field without key is looked up as value["undefined"], absent
        child = { key, expected: undefined, fields: [], elements: undefined };
        if (key === '*') node.elements = child;
        else node.fields.push(child);
      }
      node = child;
    }
    node.expected = expected;
  }
  return root;
}

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
// Below a value of the wrong type nothing is checked: that value's own check reports it. The path
// is kept as a trail and only turned into text for an error, so a valid object (the usual case)
// builds no strings.
function checkNode(value: unknown, node: ShapeNode, where: string, trail: Trail, inList: boolean): void {
  const { expected } = node;
  const absent = value === undefined || value === null;
  if (expected && (absent ? inList : !matches(value, expected))) {
    throw new InvalidReviewError(`${describePath(where, trail)} must be ${DESCRIPTIONS[expected]}, got ${typeName(value)}`);
  }
  const { elements, fields } = node;
  if (elements) {
    if (!Array.isArray(value)) return;
    for (let i = 0; i < value.length; i++) {
      trail.push(i);
      checkNode(value[i], elements, where, trail, true);
      trail.pop();
    }
    return;
  }
  if (typeName(value) !== 'object') return;
  for (const field of fields) {
    trail.push(field.key);
    checkNode((value as Record<string, unknown>)[field.key], field, where, trail, false);
    trail.pop();
  }
}

// The tree of each kind is built once.
const SERVICE_SHAPE = shapeTree([...BASE_CHECKS, ...SERVICE_CHECKS]);
const BASE_SHAPE = shapeTree(BASE_CHECKS);
const WORKLOAD_SHAPES = new Map<WorkloadKind, ShapeNode>();

function shapeFor(kind: GroupKind): ShapeNode {
  const workload = workloadKind(kind);
  if (!workload) return isService(kind) ? SERVICE_SHAPE : BASE_SHAPE;
  let shape = WORKLOAD_SHAPES.get(workload);
  // Stryker disable next-line ConditionalExpression: the cache only saves building the same tree again
  if (!shape) WORKLOAD_SHAPES.set(workload, (shape = shapeTree([...BASE_CHECKS, ...podTemplateChecks(workload.templatePath)])));
  return shape;
}

export function checkObjectShape(object: object, kind: GroupKind, where: string): void {
  // Stryker disable next-line BooleanLiteral: inList only matters for an absent value, and the object is there
  checkNode(object, shapeFor(kind), where, [], false);
}
