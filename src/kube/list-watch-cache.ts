// A list+watch cache of one resource that outlives a flaky API server: it lists in pages with a
// bound on each page, starts again after any error while keeping what it holds, keeps only what
// its owner needs of each object, and stops cleanly even in the middle of a list. client-node's
// ListWatch does the bookkeeping of adds, updates, deletes and resourceVersions.
import {
  ListWatch,
  Observable,
  Watch,
  type ConfigurationOptions,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError } from './api-error.js';

export interface ListWatchCacheOptions<T extends KubernetesObject> {
  /** The collection watched, e.g. /api/v1/nodes. */
  path: string;
  /** What log lines call one object, e.g. "namespace". */
  resource: string;
  /** One page of the list; `options` carries the signal that aborts it. */
  listPage: (page: { limit: number; _continue?: string }, options: ConfigurationOptions) => Promise<KubernetesListObject<T>>;
  /** What the cache keeps of an object: whole objects (managedFields, Node status) cost many times the heap. */
  slim: (object: T) => T;
  /** Called after each full list and each watch event. */
  onChange?: () => void;
  /** Bound on each page of the list: an API server that accepts and never answers must not stall the cache. */
  listTimeoutMs?: number;
  /** Wait before listing or watching again after a failure. */
  restartDelayMs?: number;
  /** Objects per list request; paging keeps the transient memory of a list small. */
  listPageSize?: number;
}

/** A request given up on: timed out, or the cache was stopped. Its message is the reason. */
export class AbandonedError extends Error {}

/** Per-call options that hand `signal` to the request, so that aborting it closes the socket. */
function abortable(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (context) => {
          context.setSignal(signal);
          return new Observable(Promise.resolve(context));
        },
        post: (context) => new Observable(Promise.resolve(context)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/**
 * Hands ListWatch slimmed objects, and closes a stream that connects after stop() (ListWatch.stop()
 * aborts only a watch that has already connected).
 */
class SlimWatch<T extends KubernetesObject> extends Watch {
  constructor(
    config: KubeConfig,
    private readonly slim: (object: T) => T,
    private readonly stopped: () => boolean,
  ) {
    super(config);
  }

  override async watch(...[path, query, callback, done]: Parameters<Watch['watch']>): Promise<AbortController> {
    if (this.stopped()) {
      const never = new AbortController();
      never.abort();
      return never;
    }
    const slimmed = (phase: string, object: T, event: unknown) => callback(phase, phase === 'ERROR' ? object : this.slim(object), event);
    const controller = await super.watch(path, query, slimmed, done);
    if (this.stopped()) controller.abort();
    return controller;
  }
}

export class ListWatchCache<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private readonly listTimeoutMs: number;
  private readonly restartDelayMs: number;
  private readonly listPageSize: number;
  /** Aborted by stop(): ends the list and requests in flight. */
  private lifetime = new AbortController();
  private listed = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Unix time in ms of the last list or watch event, for the staleness metric. */
  lastEventAt = 0;

  constructor(
    kubeConfig: KubeConfig,
    private readonly log: Logger,
    private readonly options: ListWatchCacheOptions<T>,
  ) {
    this.listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.restartDelayMs = options.restartDelayMs ?? 1000;
    this.listPageSize = options.listPageSize ?? 500;
    const watch = new SlimWatch(kubeConfig, options.slim, () => this.stopped);
    this.informer = new ListWatch(options.path, watch, () => this.listAll(), false);
    const changed = () => {
      this.lastEventAt = Date.now();
      options.onChange?.();
    };
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    // ListWatch stops on any error but 410 Gone; start it again, keeping what it has cached.
    // It resumes the watch from its last resourceVersion, or lists again if it has none.
    this.informer.on('error', (err) => {
      if (this.stopped) return;
      this.log.warn({ err: describeApiError(err), cached: this.size() }, `${options.resource} watch failed; serving from cache, retrying`);
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => void this.informer.start(), this.restartDelayMs);
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.lifetime.signal.aborted) this.lifetime = new AbortController();
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.lifetime.abort();
    await this.informer.stop();
  }

  /** True once a full list has arrived. */
  isListed(): boolean {
    return this.listed;
  }

  get(name: string): T | undefined {
    return this.informer.get(name);
  }

  list(): readonly T[] {
    return this.informer.list();
  }

  size(): number {
    return this.informer.list().length;
  }

  /**
   * Runs `request` so that it is aborted after `ms` or by stop(). The race settles it on time
   * even if the client is stuck before the socket (in an auth plugin, say). The timer is
   * cleared once it settles: a signal left armed would hold the response until it fired.
   */
  async bounded<R>(what: string, ms: number, request: (options: ConfigurationOptions) => Promise<R>): Promise<R> {
    const controller = new AbortController();
    let reason = '';
    const abandon = (why: string) => {
      reason = why;
      controller.abort();
    };
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(new AbandonedError(reason)), { once: true });
    });
    const timer = setTimeout(() => abandon(`${what} timed out after ${ms} ms`), ms);
    const onStop = () => abandon(`${what} abandoned: ${this.options.resource} cache stopped`);
    const { signal: stopped } = this.lifetime;
    stopped.addEventListener('abort', onStop, { once: true });
    if (stopped.aborted) onStop();
    try {
      return await Promise.race([request(abortable(controller.signal)), aborted]);
    } catch (err) {
      throw controller.signal.aborted ? new AbandonedError(reason) : err;
    } finally {
      clearTimeout(timer);
      stopped.removeEventListener('abort', onStop);
    }
  }

  /** Lists in pages, as client-go does; every page is slimmed before the next is fetched. */
  private async listAll(): Promise<KubernetesListObject<T>> {
    const items: T[] = [];
    let page: KubernetesListObject<T>;
    let _continue: string | undefined;
    do {
      page = await this.bounded(`list of ${this.options.resource}s`, this.listTimeoutMs, (options) =>
        this.options.listPage({ limit: this.listPageSize, ...(_continue ? { _continue } : {}) }, options),
      );
      for (const item of page.items) items.push(this.options.slim(item));
      _continue = page.metadata?._continue;
    } while (_continue);
    this.listed = true;
    this.lastEventAt = Date.now();
    this.options.onChange?.();
    // Every page carries the resourceVersion of the one snapshot the pages were cut from.
    return { ...page, items };
  }
}
