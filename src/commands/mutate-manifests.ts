// The pure part of `realip-webhook mutate`: manifests in, mutated manifests out, through the same
// mutate() the webhook calls, as a CREATE in each object's namespace.
import { isDeepStrictEqual } from 'node:util';
import jsonpatch, { type Operation as PatchOperation } from 'fast-json-patch';
import { parseAllDocuments, type Document } from 'yaml';
import { checkObjectShape } from '../admission/object-shape.js';
import { InvalidReviewError, typeName } from '../admission/invalid-review.js';
import { ConfigError } from '../config.js';
import { WARNING_PREFIX } from '../mutation/feature.js';
import type { AddOperation } from '../mutation/json-patch.js';
import { mutate, type MutationResult } from '../mutation/mutate.js';
import { objectName, type KubeObject } from '../mutation/objects.js';
import type { Labels } from '../mutation/settings.js';
import { isService, workloadKind } from '../mutation/workload-kinds.js';

export const OUTPUTS = ['yaml', 'json', 'patch'] as const;
export type Output = (typeof OUTPUTS)[number];

export interface MutateManifestsOptions {
  /** --namespace-labels: the labels of every object's namespace. */
  namespaceLabels?: Labels | undefined;
  /** Labels by namespace name (--namespaces-file); Namespace objects in the input take precedence. */
  namespaces?: ReadonlyMap<string, Labels> | undefined;
  labelPrefix: string;
  /** Default: json when the input is JSON, else yaml. */
  output?: Output | undefined;
}

/** One Kubernetes object of the input and what mutate() decided for it (an entry of -o patch). */
interface ObjectOutcome {
  document: number;
  /** Index in the List's items, for an object inside a List. */
  item?: number;
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  result: MutationResult;
}

export interface MutateManifestsResult {
  stdout: string;
  /** One line each: a summary per changed object, every warning, hints. */
  stderr: string[];
}

/** Objects without metadata.namespace land here, as with `kubectl apply` and no -n. */
export const DEFAULT_NAMESPACE = 'default';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeName(value) === 'object';
}

/** A v1 List (or any *List kind) with items, as `kubectl get -o yaml` writes several objects. */
function isList(value: Json): value is Json & { items: unknown[] } {
  return typeof value['kind'] === 'string' && value['kind'].endsWith('List') && Array.isArray(value['items']);
}

function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
}

/** "a=b,c=d" into labels; the error names the entry that is not key=value. */
export function parseLabelList(flag: string, value: string): Labels {
  const labels: Record<string, string> = {};
  for (const entry of value.split(',')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      throw new ConfigError(`${flag} ${JSON.stringify(value)}: ${JSON.stringify(entry)} is not key=value (allowed: key=value,key=value, e.g. realip.io/inject=enabled)`);
    }
    labels[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
  }
  return labels;
}

function unescapeSegment(segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~');
}

/**
 * Applies `add` operations to the YAML Document so that its comments and formatting stay, and
 * falls back to re-emitting the document where that is not possible (e.g. through an alias).
 */
function patchYamlDocument(doc: Document, ops: readonly AddOperation[], expected: unknown): void {
  try {
    for (const op of ops) {
      const segments = op.path.split('/').slice(1).map(unescapeSegment);
      const last = segments[segments.length - 1];
      const value = doc.createNode(op.value);
      if (last === '-') doc.addIn(segments.slice(0, -1), value);
      else doc.setIn(segments, value);
    }
    if (isDeepStrictEqual(doc.toJS(), expected)) return;
  } catch {
    // Anchors and aliases cannot be edited in place: the document is written anew below.
  }
  doc.contents = doc.createNode(expected) as typeof doc.contents;
}

interface ParsedDocument {
  doc: Document;
  /** undefined for an empty document (a stray `---`). */
  value: Json | undefined;
  /** The exact source text, written back unchanged when nothing in the document changes. */
  source: string;
}

function parseDocuments(text: string): ParsedDocument[] {
  const docs = parseAllDocuments(text);
  return docs.map((doc, i) => {
    if (doc.errors.length > 0) {
      throw new ConfigError(`document ${i}: not valid YAML or JSON: ${doc.errors[0]!.message.split('\n')[0]}`);
    }
    const start = i === 0 ? 0 : doc.range[0];
    const end = i + 1 < docs.length ? docs[i + 1]!.range[0] : text.length;
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined && !isRecord(value)) {
      throw new ConfigError(`document ${i}: expected a Kubernetes object (a map with apiVersion and kind), got ${typeName(value)}`);
    }
    return { doc, value: value ?? undefined, source: text.slice(start, end) };
  });
}

/** The objects of a document: itself, or the items of a List with their index. */
function objectsOf(value: Json, document: number): { object: Json; item?: number; where: string }[] {
  if (!isList(value)) return [{ object: value, where: `document ${document}` }];
  return value.items.map((object, item) => {
    const where = `document ${document} item ${item}`;
    if (!isRecord(object)) {
      throw new ConfigError(`${where}: expected a Kubernetes object (a map with apiVersion and kind), got ${typeName(object)}`);
    }
    return { object, item, where };
  });
}

function typeMeta(object: Json, where: string): { apiVersion: string; kind: string } {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || apiVersion === '' || typeof kind !== 'string' || kind === '') {
    throw new ConfigError(
      `${where}: apiVersion and kind must be non-empty strings, got apiVersion ${JSON.stringify(apiVersion)} and kind ${JSON.stringify(kind)}`,
    );
  }
  return { apiVersion, kind };
}

/** Namespace labels by name: the file's, then the Namespace objects of the input itself. */
function namespaceTable(parsed: ParsedDocument[], fromFile: ReadonlyMap<string, Labels> | undefined): Map<string, Labels> {
  const table = new Map(fromFile);
  parsed.forEach(({ value }, document) => {
    if (!value) return;
    for (const { object, where } of objectsOf(value, document)) {
      const { apiVersion, kind } = typeMeta(object, where);
      if (apiVersion !== 'v1' || kind !== 'Namespace') continue;
      checkShape(object, { group: '', kind }, where);
      const meta = object['metadata'] as { name?: unknown; labels?: Labels } | undefined;
      if (typeof meta?.name === 'string' && meta.name) table.set(meta.name, meta.labels ?? {});
    }
  });
  return table;
}

function checkShape(object: Json, kind: { group: string; kind: string }, where: string): void {
  try {
    checkObjectShape(object, kind, '');
  } catch (err) {
    if (!(err instanceof InvalidReviewError)) throw err;
    // The shape check names the field jq-style from the object's root, e.g. ".spec.template".
    throw new ConfigError(`${where} (${kind.kind}): ${err.message}`);
  }
}

/**
 * Style of a re-written document, taken from its source so a git diff shows only the change:
 * kubectl-style sequences at the parent key's indentation, and `{a: b}` without padding.
 */
function yamlStyle(source: string) {
  return { lineWidth: 0, indentSeq: !/^( *)[^ #\n][^\n]*:[ \t]*\n\1- /m.test(source), flowCollectionPadding: false };
}

function looksLikeJson(text: string): boolean {
  return /^\s*[{[]/.test(text);
}

export function mutateManifests(text: string, options: MutateManifestsOptions): MutateManifestsResult {
  const parsed = parseDocuments(text);
  const namespaces = namespaceTable(parsed, options.namespaces);
  const output = options.output ?? (looksLikeJson(text) ? 'json' : 'yaml');
  const stderr: string[] = [];
  const objects: ObjectOutcome[] = [];
  const injectKey = `${options.labelPrefix}/inject`;
  let handled = 0;
  let optedIn = 0;

  const results = parsed.map(({ doc, value, source }, document) => {
    if (!value) return { source, doc, value, changed: false };
    const ops: AddOperation[] = [];
    for (const { object, item, where } of objectsOf(value, document)) {
      const { apiVersion, kind } = typeMeta(object, where);
      const groupKind = { group: groupOf(apiVersion), kind };
      checkShape(object, groupKind, where);
      const meta = object['metadata'] as { namespace?: string } | undefined;
      const namespace = meta?.namespace || DEFAULT_NAMESPACE;
      const namespaceLabels = options.namespaceLabels ?? namespaces.get(namespace) ?? {};
      const result = mutate({ kind: groupKind, operation: 'CREATE', object: object as KubeObject, namespaceLabels, labelPrefix: options.labelPrefix });
      const name = objectName(object as KubeObject);
      objects.push({ document, ...(item === undefined ? {} : { item }), apiVersion, kind, namespace, name, result });

      if (isService(groupKind) || workloadKind(groupKind)) {
        handled++;
        if (namespaceLabels[injectKey] === 'enabled') optedIn++;
      }
      const label = `${kind} ${namespace}/${name}`;
      if (result.ops.length > 0) stderr.push(`mutated ${label}: ${result.changes.join(', ')}`);
      for (const warning of result.warnings) stderr.push(`Warning: ${warning} (${label})`);
      const prefix = item === undefined ? '' : `/items/${item}`;
      ops.push(...result.ops.map((op) => ({ ...op, path: prefix + op.path })));
    }
    if (ops.length === 0) return { source, doc, value, changed: false };
    // Validated like the API server applies a webhook's patch: a bad operation throws here.
    const patched = jsonpatch.applyPatch(value, ops as PatchOperation[], true, false).newDocument;
    if (output === 'yaml') patchYamlDocument(doc, ops, patched);
    return { source, doc, value: patched, changed: true };
  });

  if (handled > 0 && optedIn === 0) {
    stderr.push(
      `${WARNING_PREFIX}no Service or workload is in an opted-in namespace (label ${injectKey}=enabled); ` +
        'give --namespace-labels, --namespaces-file, or the Namespace objects in the input',
    );
  }

  let stdout: string;
  if (output === 'yaml') {
    stdout = results.map((r) => (r.changed ? r.doc.toString(yamlStyle(r.source)) : r.source)).join('');
  } else if (output === 'json') {
    const values = results.flatMap((r) => (r.value ? [r.value] : []));
    const single = values.length === 1 ? values[0] : { apiVersion: 'v1', kind: 'List', items: values };
    stdout = JSON.stringify(single, null, 2) + '\n';
  } else {
    // skips: why a feature left the object alone (e.g. Istio ambient mode), as the webhook logs it.
    const patches = objects.map(({ result, ...object }) => ({ ...object, patch: result.ops, skips: result.skips }));
    stdout = JSON.stringify(patches, null, 2) + '\n';
  }
  return { stdout, stderr };
}
