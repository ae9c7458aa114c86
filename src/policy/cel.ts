// Small builders of CEL source text. Every literal goes through lit(), so a value from the shared
// definitions (a label key, an allowed value, a warning) reaches CEL exactly as written there.
import { toPointer } from '../mutation/json-patch.js';

/** CEL source text of an expression. */
export type Cel = string;

/** A CEL string literal: JSON's escapes (\" \\ \n \uXXXX) are CEL's too. */
export function lit(value: string): Cel {
  return JSON.stringify(value);
}

export function list(values: readonly string[]): Cel {
  return `[${values.map(lit).join(', ')}]`;
}

/**
 * A CEL map or list literal whose members are CEL expressions. Kubernetes compiles CEL with
 * homogeneous aggregate literals, so every member is wrapped in dyn() to allow mixed types.
 */
export function dynMap(entries: Readonly<Record<string, Cel>>): Cel {
  return `{${Object.entries(entries).map(([k, v]) => `${lit(k)}: dyn(${v})`).join(', ')}}`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `root.?a.?b[?"c/d"]`: an optional of the value at `path`, absent where any step is missing. */
export function optionalAt(root: Cel, path: readonly string[]): Cel {
  return root + path.map((s) => (IDENTIFIER.test(s) ? `.?${s}` : `[?${lit(s)}]`)).join('');
}

/** The value at `path`, or `fallback` where any step is missing. */
export function valueOr(root: Cel, path: readonly string[], fallback: Cel): Cel {
  return path.length === 0 ? root : `${optionalAt(root, path)}.orValue(${fallback})`;
}

/** JSON.stringify of a CEL string, for warnings that quote a user's value as the webhook does. */
export function jsonQuoted(value: Cel): Cel {
  const escapes: [string, string][] = [['\\', '\\\\'], ['"', '\\"'], ['\n', '\\n'], ['\r', '\\r'], ['\t', '\\t']];
  const escaped = escapes.reduce((expr, [from, to]) => `${expr}.replace(${lit(from)}, ${lit(to)})`, `(${value})`);
  return `${lit('"')} + ${escaped} + ${lit('"')}`;
}

/**
 * CEL that builds the same text as `message`, a function of strings: it is called with markers
 * in place of the arguments, and the markers become the CEL expressions `args`.
 */
export function message<A extends string[]>(text: (...args: A) => string, ...args: { [K in keyof A]: Cel }): Cel {
  const markers = args.map((_, i) => `\u0000${i}\u0000`) as A;
  const parts = text(...markers).split('\u0000');
  // Odd parts are argument indexes, even parts literal text.
  return parts
    .map((part, i) => (i % 2 === 1 ? `(${args[Number(part)]})` : part === '' ? '' : lit(part)))
    .filter(Boolean)
    .join(' + ');
}

/**
 * A JSON patch `add` of `value` at `path` below `root`, under the same rule as the webhook's
 * addOperation: JSON patch does not create parents, so where a parent is missing the first
 * missing one is added with the rest of the path built inside it. The conditions test each
 * parent in turn, so the patch matches the object at evaluation time.
 */
export function addPatch(root: Cel, path: readonly string[], value: Cel): Cel {
  const nested = (from: number): Cel => {
    let inner = value;
    for (let i = path.length - 1; i >= from; i--) inner = path[i] === '-' ? `[${inner}]` : dynMap({ [path[i]!]: inner });
    return inner;
  };
  const op = (depth: number, v: Cel) => `JSONPatch{op: "add", path: ${lit(toPointer(path.slice(0, depth + 1)))}, value: ${v}}`;
  let expr = op(path.length - 1, value);
  for (let depth = path.length - 2; depth >= 0; depth--) {
    expr = `(!${optionalAt(root, path.slice(0, depth + 1))}.hasValue() ? ${op(depth, nested(depth + 1))} : ${expr})`;
  }
  return expr;
}

const BREAK_BEFORE = [' && ', ' || ', ' ? ', ' : ', ' + '];

/**
 * `expr` with a line break before each top-level &&, ||, ?, : and +, so that the YAML shows it as
 * a block a person can read; CEL treats the line breaks as spaces. One pair of parentheses
 * around the whole expression is dropped first.
 */
export function formatCel(expr: Cel): Cel {
  let text = expr;
  if (text.startsWith('(') && closingParen(text, 0) === text.length - 1) text = text.slice(1, -1);
  let out = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const end = stringEnd(text, i);
      out += text.slice(i, end + 1);
      i = end;
      continue;
    }
    if ('([{'.includes(c)) depth++;
    if (')]}'.includes(c)) depth--;
    const op = depth === 0 ? BREAK_BEFORE.find((o) => text.startsWith(o, i)) : undefined;
    if (op) {
      out += `\n${op.trimStart()}`;
      i += op.length - 1;
      continue;
    }
    out += c;
  }
  return out;
}

/** Index of the closing quote of the string literal that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}

/** Index of the parenthesis that closes the one at `start`, outside string literals. */
function closingParen(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '"') i = stringEnd(text, i);
    else if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}
