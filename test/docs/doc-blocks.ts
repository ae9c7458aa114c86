// The fenced blocks of the docs and the `<!-- doc-test: ... -->` markers before them (see
// docs/testing.md, "The docs test"), and how a documented output is compared with a real one.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The Markdown files the docs tests read, relative to `root`: README.md, docs/*.md, manifests/**\/README.md. */
export function docFiles(root: string): string[] {
  const files = ['README.md'];
  for (const name of readdirSync(join(root, 'docs')).sort()) if (name.endsWith('.md')) files.push(join('docs', name));
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name === 'README.md') files.push(relative(root, path));
    }
  };
  walk(join(root, 'manifests'));
  return files;
}

export interface Fence {
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word: sh, json, yaml, ... ('' when none). */
  lang: string;
  /** The marker comment on the line just before the fence, without `<!-- doc-test:` and `-->`. */
  marker: string | undefined;
  text: string;
}

const MARKER = /^<!--\s*doc-test:\s*(.*?)\s*-->\s*$/;

/** Every fenced block of a Markdown text, with its marker. Indented code blocks are not fences. */
export function fences(markdown: string): Fence[] {
  const lines = markdown.split('\n');
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = lines[j]!.trim();
      if (close.startsWith(fence[0]!.repeat(fence.length)) && close.replace(new RegExp(`^\\${fence[0]}+`), '') === '') break;
      body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!);
    }
    const marker = i > 0 ? MARKER.exec(lines[i - 1]!.trim())?.[1] : undefined;
    out.push({ line: i + 1, lang, marker, text: body.join('\n') });
    i = j;
  }
  return out;
}

export const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'console']);

export interface RunBlock {
  kind: 'run';
  line: number;
  script: string;
  cluster: boolean;
  /** Start a new cluster for this block. */
  fresh: boolean;
  needsHelm: boolean;
  /** `kubernetes>=1.N`: the lowest minor version of Kubernetes the block works on (cluster blocks). */
  minMinor: number | undefined;
  exit: number;
  before: string | undefined;
  stdout?: Fence;
  stderr?: Fence;
}
export interface ServeBlock {
  kind: 'serve';
  line: number;
  script: string;
}
export interface SkipBlock {
  kind: 'skip';
  line: number;
  script: string;
  reason: string;
}
export type Block = RunBlock | ServeBlock | SkipBlock;

/**
 * The blocks of one file in order, outputs attached to the run block they follow. Throws, naming
 * the line, on a shell block without a marker, an unknown marker, or an output with no run block.
 */
export function parseBlocks(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  let lastRun: RunBlock | undefined;
  for (const f of fences(markdown)) {
    const where = `${file}:${f.line}`;
    if (f.marker === undefined) {
      if (SHELL_LANGS.has(f.lang)) {
        throw new Error(`${where}: a \`${f.lang}\` block needs a marker on the line before it: <!-- doc-test: run -->, <!-- doc-test: run cluster -->, <!-- doc-test: skip REASON --> (see docs/testing.md)`);
      }
      continue;
    }
    const [kind = '', ...rest] = f.marker.split(/\s+/);
    const words = f.marker.slice(kind.length).trim();
    if (kind === 'skip') {
      if (!words) throw new Error(`${where}: doc-test: skip needs a reason`);
      blocks.push({ kind: 'skip', line: f.line, script: f.text, reason: words });
    } else if (kind === 'serve') {
      blocks.push({ kind: 'serve', line: f.line, script: f.text });
    } else if (kind === 'run') {
      const beforeAt = words.indexOf('before:');
      const options = (beforeAt < 0 ? words : words.slice(0, beforeAt)).split(/\s+/).filter(Boolean);
      const block: RunBlock = {
        kind: 'run', line: f.line, script: f.text, cluster: false, fresh: false, needsHelm: false, minMinor: undefined, exit: 0,
        before: beforeAt < 0 ? undefined : words.slice(beforeAt + 'before:'.length).trim(),
      };
      for (const o of options) {
        if (o === 'cluster') block.cluster = true;
        else if (o === 'fresh') block.fresh = block.cluster = true;
        else if (o === 'needs=helm') block.needsHelm = true;
        else if (/^exit=\d+$/.test(o)) block.exit = Number(o.slice(5));
        else if (/^kubernetes>=1\.\d+$/.test(o)) block.minMinor = Number(o.slice('kubernetes>=1.'.length));
        else throw new Error(`${where}: unknown doc-test run option '${o}' (allowed: cluster, fresh, needs=helm, kubernetes>=1.N, exit=N, before: COMMAND)`);
      }
      blocks.push(block);
      lastRun = block;
    } else if (kind === 'stdout' || kind === 'stderr') {
      if (rest.length > 0) throw new Error(`${where}: doc-test: ${kind} takes no options`);
      if (!lastRun) throw new Error(`${where}: doc-test: ${kind} follows no run block`);
      if (lastRun[kind]) throw new Error(`${where}: the run block at line ${lastRun.line} already shows its ${kind}`);
      lastRun[kind] = f;
    } else {
      throw new Error(`${where}: unknown doc-test marker '${kind}' (allowed: serve, run, skip, stdout, stderr)`);
    }
  }
  return blocks;
}

/** Lines without trailing spaces, and without blank lines at either end. */
function normalizeLines(text: string): string[] {
  const lines = text.split('\n').map((l) => l.trimEnd());
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines;
}

const WILDCARD = '...';

/** `...` in a documented string stands for any text. */
function matchesString(documented: string, actual: string): boolean {
  if (!documented.includes(WILDCARD)) return documented === actual;
  const pattern = documented.split(WILDCARD).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^]*');
  return new RegExp(`^${pattern}$`).test(actual);
}

/** Documented lines against actual ones; a documented line that is only `...` stands for any number of lines. */
function matchesLines(doc: string[], actual: string[]): boolean {
  if (doc.length === 0) return actual.length === 0;
  const [first, ...rest] = doc as [string, ...string[]];
  if (first === WILDCARD) {
    for (let skip = 0; skip <= actual.length; skip++) if (matchesLines(rest, actual.slice(skip))) return true;
    return false;
  }
  return actual.length > 0 && matchesString(first, actual[0]!) && matchesLines(rest, actual.slice(1));
}

/** Same structure; strings as in matchesString; anything else strictly equal. */
function matchesJson(doc: unknown, actual: unknown, path: string): string | undefined {
  if (typeof doc === 'string') {
    return typeof actual === 'string' && matchesString(doc, actual) ? undefined : `${path}: documented ${JSON.stringify(doc)}, got ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(doc)) {
    if (!Array.isArray(actual) || actual.length !== doc.length) return `${path}: documented an array of ${doc.length}, got ${JSON.stringify(actual)}`;
    for (let i = 0; i < doc.length; i++) {
      const m = matchesJson(doc[i], actual[i], `${path}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  if (doc !== null && typeof doc === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${path}: documented an object, got ${JSON.stringify(actual)}`;
    const dk = Object.keys(doc).sort();
    const ak = Object.keys(actual).sort();
    if (dk.join() !== ak.join()) return `${path}: documented keys ${dk.join(', ')}; got ${ak.join(', ')}`;
    for (const k of dk) {
      const m = matchesJson((doc as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], `${path}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  return doc === actual ? undefined : `${path}: documented ${JSON.stringify(doc)}, got ${JSON.stringify(actual)}`;
}

/** Why the actual output is not what the fence documents, or undefined when it is. */
export function outputMismatch(documented: Fence, actual: string): string | undefined {
  if (documented.lang === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(actual);
    } catch (err) {
      return `the output is not JSON (${(err as Error).message}):\n${actual}`;
    }
    const m = matchesJson(JSON.parse(documented.text), parsed, '$');
    return m && `${m}\nwhole output:\n${actual}`;
  }
  const doc = normalizeLines(documented.text);
  const got = normalizeLines(actual);
  if (matchesLines(doc, got)) return undefined;
  let i = 0;
  while (i < doc.length && i < got.length && doc[i] !== WILDCARD && matchesString(doc[i]!, got[i]!)) i++;
  return `first difference at output line ${i + 1}:\n  documented: ${JSON.stringify(doc[i])}\n  got:        ${JSON.stringify(got[i])}\nwhole output:\n${actual}`;
}
