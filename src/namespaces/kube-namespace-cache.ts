// Namespace labels from the API server: a list+watch cache, with a live GET for names the
// cache has not seen yet (a Namespace and its workloads sent in one `kubectl apply`).
import {
  CoreV1Api,
  ListWatch,
  Observable,
  Watch,
  type ConfigurationOptions,
  type KubeConfig,
  type V1Namespace,
  type V1NamespaceList,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NamespaceLookup } from '../admission/admit.js';
import type { NamespaceSource } from './namespace-source.js';

export interface KubeNamespaceCacheOptions {
  /** Bound on the live GET of a cache miss; well under the webhook's timeoutSeconds. */
  getTimeoutMs?: number;
  /** Bound on the list: an API server that accepts and never answers must not stall the cache. */
  listTimeoutMs?: number;
  /** Wait before listing again after the list or watch failed. */
  restartDelayMs?: number;
  /** Namespaces per list request; paging keeps the transient memory of a list small. */
  listPageSize?: number;
}

/** A request given up on: timed out, or the cache was stopped. Its message is the reason. */
class AbandonedError extends Error {}

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
 * What the cache keeps of a Namespace: name, labels, and the resourceVersion the watch resumes
 * from. Whole objects (managedFields and all) took five times the heap: 15 MB for 10,000.
 */
function slim(namespace: V1Namespace): V1Namespace {
  const { name, resourceVersion, labels } = namespace.metadata ?? {};
  return { metadata: { name, resourceVersion, labels } };
}

/**
 * The namespace watch: hands ListWatch slim objects, and closes a stream that connects after
 * stop() (ListWatch.stop() aborts only a watch that has already connected).
 */
class NamespaceWatch extends Watch {
  constructor(
    config: KubeConfig,
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
    const slimmed = (phase: string, object: V1Namespace, event: unknown) =>
      callback(phase, phase === 'ERROR' ? object : slim(object), event);
    const controller = await super.watch(path, query, slimmed, done);
    if (this.stopped()) controller.abort();
    return controller;
  }
}

export class KubeNamespaceCache implements NamespaceSource {
  private readonly api: CoreV1Api;
  private readonly informer: ListWatch<V1Namespace>;
  private readonly getTimeoutMs: number;
  private readonly listTimeoutMs: number;
  private readonly restartDelayMs: number;
  private readonly listPageSize: number;
  private readonly pendingGets = new Map<string, Promise<NamespaceLookup>>();
  /** Aborted by stop(): ends the list and GETs in flight. */
  private lifetime = new AbortController();
  private listed = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Unix time in ms of the last list or watch event, for the staleness metric. */
  lastEventAt = 0;

  constructor(kubeConfig: KubeConfig, private readonly log: Logger, options: KubeNamespaceCacheOptions = {}) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.getTimeoutMs = options.getTimeoutMs ?? 2000;
    this.listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.restartDelayMs = options.restartDelayMs ?? 1000;
    this.listPageSize = options.listPageSize ?? 500;
    const watch = new NamespaceWatch(kubeConfig, () => this.stopped);
    this.informer = new ListWatch('/api/v1/namespaces', watch, () => this.list(), false);
    const touch = () => (this.lastEventAt = Date.now());
    this.informer.on('add', touch);
    this.informer.on('update', touch);
    this.informer.on('delete', touch);
    // ListWatch stops on any error but 410 Gone; start it again, keeping what it has cached.
    // It resumes the watch from its last resourceVersion, or lists again if it has none.
    this.informer.on('error', (err) => {
      if (this.stopped) return;
      this.log.warn({ err: describe(err), cachedNamespaces: this.size() }, 'namespace watch failed; serving from cache, retrying');
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

  isReady(): boolean {
    return this.listed;
  }

  size(): number {
    return this.informer.list().length;
  }

  async lookup(name: string): Promise<NamespaceLookup> {
    const cached = this.informer.get(name);
    if (cached) return { found: true, labels: cached.metadata?.labels ?? {} };
    // Concurrent misses for one new namespace share one GET.
    let pending = this.pendingGets.get(name);
    if (!pending) {
      pending = this.liveGet(name).finally(() => this.pendingGets.delete(name));
      this.pendingGets.set(name, pending);
    }
    return pending;
  }

  /** Lists in pages, as client-go does; every page is slimmed before the next is fetched. */
  private async list(): Promise<V1NamespaceList> {
    const items: V1Namespace[] = [];
    let page: V1NamespaceList;
    let _continue: string | undefined;
    do {
      page = await this.bounded('list of namespaces', this.listTimeoutMs, (options) =>
        this.api.listNamespace({ limit: this.listPageSize, _continue }, options),
      );
      for (const item of page.items) items.push(slim(item));
      _continue = page.metadata?._continue;
    } while (_continue);
    this.listed = true;
    this.lastEventAt = Date.now();
    // Every page carries the resourceVersion of the one snapshot the pages were cut from.
    return { ...page, items };
  }

  private async liveGet(name: string): Promise<NamespaceLookup> {
    try {
      const ns = await this.bounded(`GET namespace ${name}`, this.getTimeoutMs, (options) =>
        this.api.readNamespace({ name }, options),
      );
      return { found: true, labels: ns.metadata?.labels ?? {} };
    } catch (err) {
      if ((err as { code?: number }).code === 404) return { found: false, reason: `namespace ${name} not found` };
      if (err instanceof AbandonedError) return { found: false, reason: err.message };
      return { found: false, reason: `GET namespace ${name} failed: ${describe(err)}` };
    }
  }

  /**
   * Runs `request` so that it is aborted after `ms` or by stop(). The race settles it on time
   * even if the client is stuck before the socket (in an auth plugin, say). The timer is
   * cleared once it settles: a signal left armed would hold the response until it fired.
   */
  private async bounded<T>(what: string, ms: number, request: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
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
    const onStop = () => abandon(`${what} abandoned: namespace cache stopped`);
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
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0]!;
  return String(err);
}
