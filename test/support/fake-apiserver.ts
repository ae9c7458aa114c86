// A stand-in for the Kubernetes API server's namespace endpoints, for fault injection at unit
// level: list, watch (JSON lines, kept open, resumable from a resourceVersion, bookmarks), GET by
// name, and knobs to take it down, slow it, answer 410 Gone or "too large resource version", end
// or drop the watch streams, and come back on restored storage (resourceVersions start over).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export const FAKE_TOKEN = 'fake-apiserver-token';

interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels: Record<string, string>;
    managedFields: unknown[];
  };
  spec: { finalizers: string[] };
  status: { phase: 'Active' };
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface WatchEvent {
  rv: number;
  type: EventType;
  object: Namespace;
}

export interface RequestRecord {
  /** 'list', 'watch' or 'get'. */
  verb: 'list' | 'watch' | 'get' | 'other';
  path: string;
  name?: string;
  resourceVersion?: string;
  /** The watch's query: timeoutSeconds and allowWatchBookmarks as sent. */
  timeoutSeconds?: string;
  allowWatchBookmarks?: string;
  at: number;
}

export class FakeApiServer {
  /** Destroy every connection, open or new, as a crashed or partitioned API server would. */
  down = false;
  /** Hold GET /api/v1/namespaces/NAME this long before answering. */
  getDelayMs = 0;
  /** Hold the list this long before answering. */
  listDelayMs = 0;
  /** Answer the next watches with HTTP 410 Gone. */
  goneWatches = 0;
  /** Answer the next watches as a newer API server answers one from a resourceVersion it has not reached. */
  tooLargeWatches: { count: number; as: 'http' | 'event' } = { count: 0, as: 'http' };
  /** Events older than this resourceVersion are compacted away: a watch from before gets a 410 ERROR event. */
  compactedBefore = 0;
  /** Keep new events from open watches, as a lagging watch would, until releaseEvents(). */
  holdEvents = false;
  readonly requests: RequestRecord[] = [];
  /** TCP connections attempted, refused ones included. */
  connections = 0;
  /** GETs of one namespace that have not been answered or abandoned yet. */
  openGets = 0;

  private readonly server = http.createServer((req, res) => this.handle(req, res));
  private readonly sockets = new Set<Socket>();
  /** Open watch streams and the resourceVersion each started from: older events are not sent to it. */
  private readonly watches = new Map<http.ServerResponse, number>();
  private readonly namespaces = new Map<string, Namespace>();
  private readonly history: WatchEvent[] = [];
  private readonly held: WatchEvent[] = [];
  private rv = 100;

  constructor() {
    this.server.on('connection', (socket) => {
      this.connections++;
      if (this.down) return void socket.destroy();
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A KubeConfig that points at this server with a bearer token, as a kubeconfig file would. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: FAKE_TOKEN }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Creates or relabels a namespace; open watches see ADDED or MODIFIED. */
  set(name: string, labels: Record<string, string>): void {
    const type = this.namespaces.has(name) ? 'MODIFIED' : 'ADDED';
    // Shaped like `kubectl get namespace -o json`, managedFields included: the cache holds all of it.
    const created = '2026-01-01T00:00:00Z';
    const object: Namespace = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name,
        uid: `00000000-0000-4000-8000-${String(this.rv).padStart(12, '0')}`,
        resourceVersion: String(++this.rv),
        creationTimestamp: created,
        labels,
        managedFields: [
          {
            apiVersion: 'v1',
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:metadata': { 'f:labels': Object.fromEntries([['.', {}], ...Object.keys(labels).map((k) => [`f:${k}`, {}])]) } },
            manager: 'kubectl-client-side-apply',
            operation: 'Update',
            time: created,
          },
        ],
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
    this.namespaces.set(name, object);
    this.emit({ rv: this.rv, type, object });
  }

  delete(name: string): void {
    const object = this.namespaces.get(name);
    if (!object) return;
    this.namespaces.delete(name);
    this.emit({ rv: ++this.rv, type: 'DELETED', object: { ...object, metadata: { ...object.metadata, resourceVersion: String(this.rv) } } });
  }

  /** Ends every open watch stream abruptly (socket destroyed, no clean end). */
  dropWatches(): void {
    for (const res of this.watches.keys()) res.socket?.destroy();
    this.watches.clear();
  }

  /** Ends every open watch stream cleanly, as the API server does at the watch's timeoutSeconds. */
  endWatches(): void {
    for (const res of this.watches.keys()) res.end();
    this.watches.clear();
  }

  /** Sends a BOOKMARK with the current resourceVersion to every open watch. */
  bookmark(): void {
    const object = { kind: 'Namespace', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } };
    for (const res of this.watches.keys()) res.write(JSON.stringify({ type: 'BOOKMARK', object }) + '\n');
  }

  /**
   * Storage restored from a backup taken before `namespaces` changed: only these namespaces
   * exist, and resourceVersions start over far below what clients have seen. Open watches stay
   * open, as a watch from a resourceVersion the storage has not reached does on an API server of
   * 1.20: it sends nothing, not even bookmarks, since every new event is older than its start.
   */
  restoreStorage(namespaces: Record<string, Record<string, string>>): void {
    this.namespaces.clear();
    this.history.length = 0;
    this.rv = 10;
    for (const [name, labels] of Object.entries(namespaces)) this.set(name, labels);
  }

  /** Takes the server down (all connections destroyed) or brings it back. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) {
      for (const socket of this.sockets) socket.destroy();
      this.watches.clear();
    }
  }

  /** The newest resourceVersion, as a list would report it. */
  get resourceVersion(): number {
    return this.rv;
  }

  get openWatches(): number {
    return this.watches.size;
  }

  count(verb: RequestRecord['verb'], name?: string): number {
    return this.requests.filter((r) => r.verb === verb && (name === undefined || r.name === name)).length;
  }

  /** Sends the events kept back by holdEvents to the open watches. */
  releaseEvents(): void {
    this.holdEvents = false;
    for (const event of this.held.splice(0)) this.send(event);
  }

  private emit(event: WatchEvent): void {
    this.history.push(event);
    if (this.holdEvents) this.held.push(event);
    else this.send(event);
  }

  private send(event: WatchEvent): void {
    for (const [res, from] of this.watches) if (event.rv > from) res.write(line(event));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const name = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(url.pathname)?.[1];
    const watching = url.pathname === '/api/v1/namespaces' && url.searchParams.get('watch') === 'true';
    const verb = watching ? 'watch' : url.pathname === '/api/v1/namespaces' ? 'list' : name ? 'get' : 'other';
    const resourceVersion = url.searchParams.get('resourceVersion') ?? undefined;
    const query = (key: string) => url.searchParams.get(key) ?? undefined;
    this.requests.push({
      verb,
      path: url.pathname,
      ...(name ? { name } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      ...(query('timeoutSeconds') !== undefined ? { timeoutSeconds: query('timeoutSeconds') } : {}),
      ...(query('allowWatchBookmarks') !== undefined ? { allowWatchBookmarks: query('allowWatchBookmarks') } : {}),
      at: Date.now(),
    });

    if (req.headers.authorization !== `Bearer ${FAKE_TOKEN}`) return status(res, 401, 'Unauthorized');
    if (verb === 'watch') return this.watch(res, resourceVersion);
    if (verb === 'list') {
      // Pages by ?limit=&continue=, the continue token being the offset of the next item.
      const items = [...this.namespaces.values()];
      const from = Number(url.searchParams.get('continue') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 0) || items.length;
      const next = from + limit < items.length ? String(from + limit) : undefined;
      return later(res, this.listDelayMs, () =>
        json(res, 200, {
          apiVersion: 'v1',
          kind: 'NamespaceList',
          metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) },
          items: items.slice(from, from + limit),
        }),
      );
    }
    if (verb === 'get') {
      this.openGets++;
      let open = true;
      const done = () => {
        if (open) this.openGets--;
        open = false;
      };
      res.on('close', done);
      return later(res, this.getDelayMs, () => {
        done();
        const object = this.namespaces.get(decodeURIComponent(name!));
        if (object) json(res, 200, object);
        else status(res, 404, 'NotFound', `namespaces "${name}" not found`);
      });
    }
    status(res, 404, 'NotFound', `no route ${url.pathname}`);
  }

  private watch(res: http.ServerResponse, resourceVersion: string | undefined): void {
    if (this.goneWatches > 0) {
      this.goneWatches--;
      return status(res, 410, 'Gone', 'too old resource version');
    }
    const from = resourceVersion ? Number(resourceVersion) : this.rv;
    const tooLarge = this.tooLargeWatches.count > 0 && from > this.rv;
    if (tooLarge) this.tooLargeWatches.count--;
    // What kube-apiserver 1.27+ answers (after a 3 s wait) for a resourceVersion it has not reached.
    const tooLargeStatus = {
      ...statusBody(504, 'Timeout', `Too large resource version: ${from}, current: ${this.rv}`),
      details: { causes: [{ reason: 'ResourceVersionTooLarge', message: `Too large resource version` }], retryAfterSeconds: 1 },
    };
    if (tooLarge && this.tooLargeWatches.as === 'http') return json(res, 504, tooLargeStatus);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (tooLarge) return void res.end(JSON.stringify({ type: 'ERROR', object: tooLargeStatus }) + '\n');
    if (from < this.compactedBefore) {
      // What a real API server does when the resourceVersion has been compacted: one ERROR event, then end.
      res.end(JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${from}`) }) + '\n');
      return;
    }
    for (const event of this.history) if (event.rv > from) res.write(line(event));
    this.watches.set(res, from);
    res.on('close', () => this.watches.delete(res));
  }
}

/** Answers after `ms`, unless the client has gone by then. */
function later(res: http.ServerResponse, ms: number, answer: () => void): void {
  const timer = setTimeout(answer, ms);
  res.on('close', () => clearTimeout(timer));
}

function line(event: WatchEvent): string {
  return JSON.stringify({ type: event.type, object: event.object }) + '\n';
}

function statusBody(code: number, reason: string, message: string) {
  return { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message };
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(res: http.ServerResponse, code: number, reason: string, message = reason): void {
  json(res, code, statusBody(code, reason, message));
}
