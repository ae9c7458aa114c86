// Namespace labels from a file, for local runs and CI previews without a cluster.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { NamespaceLookup } from '../admission/admit.js';
import type { Labels } from '../mutation/settings.js';
import type { NamespaceSource } from './namespace-source.js';

/**
 * Reads a YAML or JSON file of Namespaces: one per document, a list of them, or a
 * `List`/`NamespaceList` with `items`. Errors name the file, the document and the problem.
 */
export function parseNamespaces(text: string, file: string): Map<string, Labels> {
  const namespaces = new Map<string, Labels>();
  parseAllDocuments(text).forEach((doc, docIndex) => {
    if (doc.errors.length > 0) throw new Error(`${file}: document ${docIndex}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const listed = Array.isArray(value) ? value : isList(value) ? value.items : undefined;
    (listed ?? [value]).forEach((item, i) => {
      const where = `${file}: document ${docIndex}${listed ? ` item ${i}` : ''}`;
      const { name, labels } = namespaceFields(item, where);
      namespaces.set(name, labels);
    });
  });
  return namespaces;
}

function isList(value: unknown): value is { items: unknown[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { items?: unknown }).items);
}

function namespaceFields(item: unknown, where: string): { name: string; labels: Labels } {
  const object = item as { kind?: unknown; metadata?: { name?: unknown; labels?: unknown } } | null;
  if (typeof object !== 'object' || object === null) throw new Error(`${where}: expected a Namespace object`);
  if (object.kind !== undefined && object.kind !== 'Namespace') {
    throw new Error(`${where}: kind ${JSON.stringify(object.kind)} is not Namespace`);
  }
  const name = object.metadata?.name;
  if (typeof name !== 'string' || name === '') throw new Error(`${where}: metadata.name must be a non-empty string`);
  const labels = object.metadata?.labels ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string')) {
    throw new Error(`${where}: metadata.labels must be a map of strings`);
  }
  return { name, labels: labels as Labels };
}

export class FileNamespaceSource implements NamespaceSource {
  private readonly namespaces: Map<string, Labels>;
  /** The file is read once: the labels are as old as that read. */
  readonly lastEventAt = Date.now();

  constructor(readonly path: string) {
    this.namespaces = parseNamespaces(readFileSync(path, 'utf8'), path);
  }

  async lookup(name: string): Promise<NamespaceLookup> {
    const labels = this.namespaces.get(name);
    return labels ? { found: true, labels } : { found: false, reason: `namespace ${name} is not in ${this.path}` };
  }

  isReady(): boolean {
    return true;
  }

  size(): number {
    return this.namespaces.size;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}
}
