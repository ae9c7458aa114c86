// Runs corpus cases through one engine on a real API server and reads back what it stored: an
// engine is a label prefix (the webhook serves realip.io, the policies their own prefix), so each
// engine only sees the namespaces labelled with its own prefix.
import { isDeepStrictEqual } from 'node:util';
import type { Cluster } from '../e2e/cluster.js';
import { getJson, type Obj } from '../e2e/webhook-harness.js';
import { PREFIX, type Case } from './corpus.js';

export interface Engine {
  name: string;
  prefix: string;
}

export interface Outcome {
  object: Obj;
  warnings: string[];
}

export interface CaseOutcome {
  create: Outcome;
  update?: Outcome;
  /** The object the UPDATE sent, with realip.io/ keys. */
  updateSent?: Obj;
  /** What a second pass over the stored object changed: undefined when nothing. */
  secondPass?: string;
}

const prefixPattern = (prefix: string) => new RegExp(`(?<![\\w.-])${prefix.replaceAll('.', '\\.')}/`, 'g');

/** `value` with every `from`/ key (labels, annotations) written with `to`/ instead. */
export function renamePrefix<T>(value: T, from: string, to: string): T {
  return JSON.parse(JSON.stringify(value).replace(prefixPattern(from), `${to}/`)) as T;
}

export function namespaceName(engine: Engine, labels: Record<string, string>, names: Map<string, number>): string {
  const key = JSON.stringify(Object.entries(labels).sort());
  if (!names.has(key)) names.set(key, names.size);
  return `${engine.name}-${names.get(key)}`;
}

// A ValidatingAdmissionPolicy's warning carries this prefix; the text after it is the webhook's.
const VAP_PREFIX = /^Validation failed for ValidatingAdmissionPolicy '[^']*' with binding '[^']*': /;

export function warningsOf(stderr: string, engine: Engine): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('Warning: '))
    .map((l) => l.slice('Warning: '.length).replace(VAP_PREFIX, '').replace(prefixPattern(engine.prefix), `${PREFIX}/`));
}

const ALLOCATED = '<allocated>';

/** What the API server stored, less what differs between any two creates (names, uids, times, allocations). */
export function normalize(stored: Obj, engine: Engine): Obj {
  const uid = stored.metadata?.uid as string | undefined;
  let text = JSON.stringify(renamePrefix(stored, engine.prefix, PREFIX));
  if (uid) text = text.replaceAll(uid, '<uid>');
  const o = JSON.parse(text) as Obj;
  for (const field of ['namespace', 'uid', 'resourceVersion', 'creationTimestamp', 'managedFields']) delete o.metadata[field];
  if (o.metadata.generateName) delete o.metadata.name;
  if (o.kind === 'Service') {
    for (const field of ['clusterIP', 'clusterIPs', 'healthCheckNodePort']) if (o.spec[field] !== undefined) o.spec[field] = ALLOCATED;
    for (const port of o.spec.ports ?? []) if (port.nodePort !== undefined) port.nodePort = ALLOCATED;
  }
  return o;
}

/** The stored object as a client would send it again: no server-set fields, allocations left to the server. */
function resubmittable(stored: Obj): Obj {
  const o = structuredClone(stored);
  for (const field of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'generation']) delete o.metadata[field];
  delete o.status;
  if (o.kind === 'Service') {
    for (const field of ['clusterIP', 'clusterIPs', 'healthCheckNodePort']) delete o.spec[field];
    for (const port of o.spec.ports ?? []) delete port.nodePort;
  }
  if (o.kind === 'Job') {
    // The selector and its labels are generated from the Job's uid; a new create makes new ones.
    delete o.spec.selector;
    for (const labels of [o.metadata.labels, o.spec.template.metadata.labels]) {
      for (const key of Object.keys(labels ?? {})) if (/controller-uid|job-name/.test(key)) delete labels[key];
    }
  }
  return o;
}

/** A Job's metadata.labels without the ones PrepareForCreate generates (see compare.ts). */
export function withoutGeneratedJobLabels(o: Obj): Obj {
  if (o.kind !== 'Job') return o;
  const labels = Object.fromEntries(Object.entries(o.metadata.labels ?? {}).filter(([k]) => !/controller-uid|job-name/.test(k)));
  return { ...o, metadata: { ...o.metadata, labels } };
}

export class EngineRunner {
  constructor(
    private readonly cluster: Cluster,
    readonly engine: Engine,
    private readonly namespaces: Map<string, number>,
  ) {}

  namespaceFor(labels: Record<string, string>): string {
    return namespaceName(this.engine, labels, this.namespaces);
  }

  /** The case's object for this engine: its prefix, its namespace, and a unique name for a real create. */
  private objectFor(c: Case, index: number): Obj {
    const o = renamePrefix(c.object, PREFIX, this.engine.prefix);
    o.metadata.namespace = this.namespaceFor(c.labels);
    if (c.update) o.metadata.name = `${o.metadata.name}-u${index}`;
    return o;
  }

  private async kubectl(args: string[], object: Obj) {
    return this.cluster.kubectl([...args, '-f', '-'], { stdin: JSON.stringify(object) });
  }

  async run(c: Case, index: number): Promise<CaseOutcome> {
    const object = this.objectFor(c, index);
    const ns = object.metadata.namespace as string;
    if (!c.update) {
      const first = await this.kubectl(['create', '--dry-run=server', '-o', 'json'], object);
      const stored = JSON.parse(first.stdout) as Obj;
      const again = JSON.parse((await this.kubectl(['create', '--dry-run=server', '-o', 'json'], resubmittable(stored))).stdout) as Obj;
      const create = { object: normalize(stored, this.engine), warnings: warningsOf(first.stderr, this.engine) };
      return { create, ...this.secondPass(create.object, normalize(again, this.engine)) };
    }
    const get = () => getJson(this.cluster, [object.kind.toLowerCase(), object.metadata.name, '-n', ns]);
    const created = await this.kubectl(['create'], object);
    const stored = await get();
    const { prefix } = this.engine;
    const updateSent = c.update.change(renamePrefix(stored, prefix, PREFIX));
    const replaced = await this.kubectl(['replace'], renamePrefix(updateSent, PREFIX, prefix));
    const updated = await get();
    // A second pass: the stored object sent back unchanged must stay as it is.
    await this.kubectl(['replace'], updated);
    const after = await get();
    const secondPass = after.metadata.resourceVersion === updated.metadata.resourceVersion ? {} : this.secondPass(normalize(updated, this.engine), normalize(after, this.engine));
    return {
      create: { object: normalize(stored, this.engine), warnings: warningsOf(created.stderr, this.engine) },
      update: { object: normalize(updated, this.engine), warnings: warningsOf(replaced.stderr, this.engine) },
      updateSent,
      ...secondPass,
    };
  }

  private secondPass(first: Obj, again: Obj): { secondPass?: string } {
    // The Job's generated labels follow the API server's defaulting, not the engine (compare.ts).
    const strip = (o: Obj) => withoutGeneratedJobLabels(o);
    return isDeepStrictEqual(strip(first), strip(again)) ? {} : { secondPass: `${JSON.stringify(first)}\n  became\n${JSON.stringify(again)}` };
  }
}
