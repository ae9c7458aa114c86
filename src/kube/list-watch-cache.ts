// A list+watch cache of one cluster-scoped resource that heals by itself, after client-go's
// reflector: it lists in pages (a list replaces what it holds, so deleted objects go), then
// watches from the list's resourceVersion with a jittered server-side timeoutSeconds and
// bookmarks, and gives a watch up when no byte has come for longer than that timeout. It resumes
// the watch only when the server ended one that had confirmed its resourceVersion (an event or
// a bookmark). Everything else lists afresh: a 410, a "too large resource version", a watch that
// breaks, fails to open, goes silent, or ends without a single event (as one from the
// resourceVersion of another etcd does on 1.20). Failures back off with jitter. It keeps only
// what its owner needs of each object (possibly nothing, for an owner that acts on each object as
// it comes), and stops cleanly mid-request. Namespaced objects are keyed by namespace/name.
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { Backoff, systemClock, type BackoffOptions, type Clock } from './backoff.js';
import { KubeApiError, KubeHttp, statusError, type KubeStatus } from './kube-http.js';

/** Why a watch was started again; the label of the restart metric. */
export type RestartReason =
  | 'list_failed'
  | 'watch_failed'
  | 'expired'
  | 'too_large_resource_version'
  | 'inactive'
  | 'closed_without_events'
  | 'stream_broken';

/** Told of each restart and each list after the first. */
export interface WatchReporter {
  restarted(reason: RestartReason): void;
  relisted(): void;
}

/** What the metrics read of a watched resource. */
export interface WatchedResource {
  readonly resource: string;
  /** Unix time in ms of the last successful list or watch event (bookmarks included); 0 before. */
  readonly lastSuccessAt: number;
  reporter: WatchReporter | undefined;
}

export interface ListWatchCacheOptions<T extends KubernetesObject> {
  /** The collection watched, e.g. /api/v1/nodes. */
  path: string;
  /** What log lines and metrics call one object, e.g. "namespace". */
  resource: string;
  /**
   * What the cache keeps of an object: whole objects (managedFields, Node status) cost many times
   * the heap. Undefined: nothing is kept (the owner acts on each object in onObject).
   */
  slim: (object: T) => T | undefined;
  /** Called after each full list and each watch event that changes an object. */
  onChange?: () => void;
  /** Each object of every list and each ADDED or MODIFIED event, whole, before it is slimmed. */
  onObject?: (object: T) => void;
  /** Each DELETED event. */
  onDeleted?: (object: T) => void;
  /** Bound on each page of the list: an API server that accepts and never answers must not stall the cache. */
  listTimeoutMs?: number;
  /** Objects per list request; paging keeps the transient memory of a list small. */
  listPageSize?: number;
  /** Server-side timeout of a watch before jitter; each watch asks for up to half as much again. */
  watchTimeoutSeconds?: number;
  /** How long past its timeoutSeconds a silent watch is waited for before it is given up. */
  inactivityGraceMs?: number;
  backoff?: BackoffOptions;
  /** Nothing succeeded for this long: an error line (once per such period). */
  staleAfterMs?: number;
  clock?: Clock;
  random?: () => number;
}

/** The timing settings an owner of a cache may pass through (the owner fixes what is watched). */
export type ListWatchTuning = Omit<ListWatchCacheOptions<KubernetesObject>, 'path' | 'resource' | 'slim' | 'onChange' | 'onObject' | 'onDeleted'>;

/** A request given up on: timed out, or the cache was stopped. Its message is the reason. */
export class AbandonedError extends Error {}

interface Restart {
  reason: RestartReason;
  err?: string;
}

function keyOf(object: KubernetesObject): string | undefined {
  const { name, namespace } = object.metadata ?? {};
  return name && namespace ? `${namespace}/${name}` : name;
}

interface WatchEvent<T> {
  type?: string;
  object?: T & KubeStatus;
}

function isTooLargeResourceVersion(err: KubeApiError): boolean {
  return err.causes.includes('ResourceVersionTooLarge') || /too large resource version/i.test(err.message);
}

function restartFor(err: KubeApiError): Restart {
  if (err.status === 410) return { reason: 'expired', err: err.message };
  if (isTooLargeResourceVersion(err)) return { reason: 'too_large_resource_version', err: err.message };
  return { reason: 'watch_failed', err: err.message };
}

export class ListWatchCache<T extends KubernetesObject> implements WatchedResource {
  readonly resource: string;
  reporter: WatchReporter | undefined;
  /** Unix time in ms of the last list or change event, for the namespace cache age metric. */
  lastEventAt = 0;
  lastSuccessAt = 0;
  private readonly http: KubeHttp;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: Backoff;
  private readonly listTimeoutMs: number;
  private readonly listPageSize: number;
  private readonly watchTimeoutSeconds: number;
  private readonly inactivityGraceMs: number;
  private readonly staleAfterMs: number;
  private store = new Map<string, T>();
  /** Where the next watch starts; undefined: list first. */
  private resumeFrom: string | undefined;
  private listed = false;
  private startedAt = 0;
  private lastStaleErrorAt = 0;
  /** Aborted by stop(): ends the loop and every request in flight. */
  private lifetime = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly log: Logger,
    private readonly options: ListWatchCacheOptions<T>,
  ) {
    this.resource = options.resource;
    this.http = new KubeHttp(kubeConfig);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff(this.clock, this.random, options.backoff);
    this.listTimeoutMs = options.listTimeoutMs ?? 30_000;
    this.listPageSize = options.listPageSize ?? 500;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? 20;
    this.inactivityGraceMs = options.inactivityGraceMs ?? 5000;
    this.staleAfterMs = options.staleAfterMs ?? 5 * 60_000;
  }

  /** Starts listing and watching; resolves once the first list has arrived or failed. */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    this.startedAt = this.clock.now();
    return new Promise((firstListDone) => {
      this.running = this.run(firstListDone);
    });
  }

  async stop(): Promise<void> {
    this.lifetime.abort();
    await this.running;
    this.running = undefined;
  }

  /** True once a full list has arrived. */
  isListed(): boolean {
    return this.listed;
  }

  /** By name, or namespace/name for a namespaced resource. */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): readonly T[] {
    return [...this.store.values()];
  }

  size(): number {
    return this.store.size;
  }

  /** GET one object of the collection on a connection of its own, bounded by `ms`. */
  getOne(name: string, ms: number): Promise<T> {
    const path = `${this.options.path}/${encodeURIComponent(name)}`;
    return this.bounded(`GET ${this.resource} ${name}`, ms, (signal) => this.http.getJson<T>(path, {}, signal));
  }

  /**
   * Runs `request` so that it is aborted after `ms` or by stop(). The race settles it on time
   * even if the request is stuck before the socket (in an auth plugin, say).
   */
  private async bounded<R>(what: string, ms: number, request: (signal: AbortSignal) => Promise<R>): Promise<R> {
    const controller = new AbortController();
    let reason = '';
    const abandon = (why: string) => {
      reason = why;
      controller.abort();
    };
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(new AbandonedError(reason)), { once: true });
    });
    const timer = this.clock.setTimeout(() => abandon(`${what} timed out after ${ms} ms`), ms);
    const onStop = () => abandon(`${what} abandoned: ${this.resource} cache stopped`);
    const { signal: stopped } = this.lifetime;
    stopped.addEventListener('abort', onStop, { once: true });
    if (stopped.aborted) onStop();
    try {
      return await Promise.race([request(controller.signal), aborted]);
    } catch (err) {
      throw controller.signal.aborted ? new AbandonedError(reason) : err;
    } finally {
      this.clock.clearTimeout(timer);
      stopped.removeEventListener('abort', onStop);
    }
  }

  private async run(firstListDone: () => void): Promise<void> {
    const { signal } = this.lifetime;
    while (!signal.aborted) {
      let restart: Restart | undefined;
      if (this.resumeFrom === undefined) {
        try {
          await this.relist();
        } catch (err) {
          restart = { reason: 'list_failed', err: errorMessage(err) };
        }
        firstListDone();
      }
      if (!restart) restart = await this.watchOnce(signal);
      if (signal.aborted) break;
      if (!restart) continue;
      this.restarted(restart);
      // A watch given up for silence has waited long enough already; everything else backs off.
      if (restart.reason !== 'inactive') await this.sleep(this.backoff.next(), signal);
    }
    firstListDone();
  }

  /** Lists in pages, as client-go does; every page is slimmed before the next is fetched. */
  private async relist(): Promise<void> {
    const items = new Map<string, T>();
    let page: KubernetesListObject<T> & { metadata?: { continue?: string } };
    let next: string | undefined;
    do {
      const query = { limit: this.listPageSize, continue: next };
      page = await this.bounded(`list of ${this.resource}s`, this.listTimeoutMs, (signal) => this.http.getJson(this.options.path, query, signal));
      for (const item of page.items) this.keep(items, item);
      next = page.metadata?.continue || undefined;
    } while (next);
    const relisted = this.listed;
    // The list replaces the cache: what it does not carry has been deleted.
    this.store = items;
    // Every page carries the resourceVersion of the one snapshot the pages were cut from.
    this.resumeFrom = page.metadata?.resourceVersion ?? '';
    this.listed = true;
    this.lastEventAt = this.lastSuccessAt = this.clock.now();
    this.options.onChange?.();
    if (relisted) this.reporter?.relisted();
  }

  /** One watch, until it ends; what to restart for, or nothing when it ended as it should. */
  private async watchOnce(stopped: AbortSignal): Promise<Restart | undefined> {
    const timeoutSeconds = Math.floor(this.watchTimeoutSeconds * (1 + this.random() / 2));
    const deadlineMs = timeoutSeconds * 1000 + this.inactivityGraceMs;
    const controller = new AbortController();
    const stop = () => controller.abort();
    stopped.addEventListener('abort', stop, { once: true });
    let opened = false;
    let lines = 0;
    let lastDataAt = this.clock.now();
    let inactive = false;
    let errorEvent: KubeApiError | undefined;
    let badLine: string | undefined;
    // One timer per deadline rather than one per chunk: it re-arms itself from the last chunk.
    let timer: unknown;
    const check = () => {
      const idle = this.clock.now() - lastDataAt;
      if (idle < deadlineMs) return void (timer = this.clock.setTimeout(check, deadlineMs - idle));
      inactive = true;
      controller.abort();
    };
    timer = this.clock.setTimeout(check, deadlineMs);
    const query = { resourceVersion: this.resumeFrom || undefined, allowWatchBookmarks: true, timeoutSeconds };
    let broken: unknown;
    try {
      await this.http.watch(this.options.path, query, controller.signal, {
        onData: () => {
          opened = true;
          lastDataAt = this.clock.now();
        },
        onLine: (line) => {
          try {
            errorEvent ??= this.apply(JSON.parse(line) as WatchEvent<T>);
            lines++;
          } catch (err) {
            badLine = errorMessage(err);
            controller.abort();
          }
        },
      });
    } catch (err) {
      broken = err;
    } finally {
      this.clock.clearTimeout(timer);
      stopped.removeEventListener('abort', stop);
    }
    if (stopped.aborted) return undefined;
    // Resume only after the server ended a watch that confirmed its resourceVersion. After any
    // other end the next connection may reach another API server, on other storage: list again.
    const renewed = !errorEvent && !inactive && !badLine && !broken && lines > 0;
    if (renewed) return undefined;
    this.resumeFrom = undefined;
    if (errorEvent) return restartFor(errorEvent);
    if (inactive) return { reason: 'inactive', err: `no byte for ${deadlineMs} ms (watch timeoutSeconds ${timeoutSeconds})` };
    if (badLine) return { reason: 'stream_broken', err: `unreadable watch event: ${badLine}` };
    if (broken instanceof KubeApiError) return restartFor(broken);
    if (broken) return { reason: opened ? 'stream_broken' : 'watch_failed', err: errorMessage(broken) };
    return { reason: 'closed_without_events', err: `the watch from resourceVersion ${query.resourceVersion ?? '(none)'} ended with no event or bookmark` };
  }

  /** Applies one watch event; an ERROR event is returned as the error it carries. */
  private apply(event: WatchEvent<T>): KubeApiError | undefined {
    const { type, object } = event;
    if (!object || typeof object !== 'object') throw new Error(`event ${type} has no object`);
    if (type === 'ERROR') return statusError(object, 500);
    const resourceVersion = object.metadata?.resourceVersion;
    if (type === 'ADDED' || type === 'MODIFIED') {
      this.keep(this.store, object);
    } else if (type === 'DELETED') {
      const key = keyOf(object);
      if (key) this.store.delete(key);
      this.options.onDeleted?.(object);
    } else if (type !== 'BOOKMARK') {
      throw new Error(`unknown event type ${String(type)}`);
    }
    if (resourceVersion) this.resumeFrom = resourceVersion;
    const now = this.clock.now();
    this.lastSuccessAt = now;
    if (type !== 'BOOKMARK') {
      this.lastEventAt = now;
      this.options.onChange?.();
    }
    return undefined;
  }

  /** Hands the whole object to the owner, then stores what it keeps of it. */
  private keep(store: Map<string, T>, object: T): void {
    const key = keyOf(object);
    if (!key) return;
    this.options.onObject?.(object);
    const kept = this.options.slim(object);
    if (kept) store.set(key, kept);
    else store.delete(key);
  }

  private restarted({ reason, err }: Restart): void {
    this.reporter?.restarted(reason);
    const now = this.clock.now();
    const staleMs = now - (this.lastSuccessAt || this.startedAt);
    const fields = { resource: this.resource, reason, err, cached: this.size(), sinceLastSuccessS: Math.round(staleMs / 1000) };
    this.log.warn(fields, `${this.resource} watch restarting (${reason}): listing again; serving from cache meanwhile`);
    if (staleMs >= this.staleAfterMs && now - this.lastStaleErrorAt >= this.staleAfterMs) {
      this.lastStaleErrorAt = now;
      this.log.error(fields, `no ${this.resource} list or watch event has succeeded for ${fields.sinceLastSuccessS} s; the cached ${this.resource}s may be stale`);
    }
  }

  private sleep(ms: number, stopped: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.clock.clearTimeout(timer);
        stopped.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      stopped.addEventListener('abort', done, { once: true });
    });
  }
}
