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
 * ListWatch.stop() aborts only a watch that has connected; one still connecting would stay open
 * after stop(). This one is not started after stop and is closed if it connects after it.
 */
class StoppableWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly stopped: () => boolean,
  ) {
    super(config);
  }

  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    if (this.stopped()) {
      const never = new AbortController();
      never.abort();
      return never;
    }
    const controller = await super.watch(...args);
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
    const watch = new StoppableWatch(kubeConfig, () => this.stopped);
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

  private async list() {
    const list = await this.bounded('list of namespaces', this.listTimeoutMs, (options) => this.api.listNamespace({}, options));
    this.listed = true;
    this.lastEventAt = Date.now();
    return list;
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
   * even if the client is stuck before the socket (in an auth plugin, say).
   */
  private async bounded<T>(what: string, ms: number, request: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(ms);
    const signal = AbortSignal.any([timeout, this.lifetime.signal]);
    const abandoned = () =>
      new AbandonedError(timeout.aborted ? `${what} timed out after ${ms} ms` : `${what} abandoned: namespace cache stopped`);
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(abandoned()), { once: true }));
    try {
      return await Promise.race([request(abortable(signal)), aborted]);
    } catch (err) {
      throw signal.aborted ? abandoned() : err;
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0]!;
  return String(err);
}
