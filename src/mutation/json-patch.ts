// JSON patch operations that apply under the API server's rules (RFC 6902): `add` needs an
// existing parent, so missing parents are created in the same operation, and keys are escaped.

export interface AddOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export function escapePointerSegment(segment: string): string {
  // Most keys need no escaping; skipping the two replaceAll calls halves the cost of a path.
  // Stryker disable next-line ConditionalExpression,StringLiteral: a fast path, replaceAll would return such a key unchanged
  if (!segment.includes('~') && !segment.includes('/')) return segment;
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function toPointer(segments: readonly string[]): string {
  let pointer = '';
  for (const segment of segments) pointer += '/' + escapePointerSegment(segment);
  return pointer;
}

/**
 * An `add` of `value` at `segments` in `doc`. Where a parent is missing (or null), the operation
 * adds the first missing parent with the rest of the path built inside it. A last segment of
 * '-' appends to an array, creating the array when it is missing.
 */
export function addOperation(doc: unknown, segments: readonly string[], value: unknown): AddOperation {
  let node: unknown = doc;
  let depth = 0;
  // Stryker disable next-line EqualityOperator,ArithmeticOperator: only parents can be missing; walking on to the last segment ends at the same pointer
  for (; depth < segments.length - 1; depth++) {
    const child = (node as Record<string, unknown>)[segments[depth]!];
    if (child === undefined || child === null) break;
    node = child;
  }
  let nested = value;
  for (let i = segments.length - 1; i > depth; i--) {
    nested = segments[i] === '-' ? [nested] : { [segments[i]!]: nested };
  }
  return { op: 'add', path: toPointer(segments.slice(0, depth + 1)), value: nested };
}
