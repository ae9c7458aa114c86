// Namespace labels from the API server: a list+watch cache, with a live GET for names the
// cache has not seen yet (a Namespace and its workloads sent in one `kubectl apply`).
import { CoreV1Api, makeInformer, type Informer, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NamespaceLookup } from '../admission/admit.js';
import type { NamespaceSource } from './namespace-source.js';

export interface KubeNamespaceCacheOptions {
  /** Bound on the live GET of a cache miss; well under the webhook's timeoutSeconds. */
  getTimeoutMs?: number;
  /** Wait before listing again after the list or watch failed. */
  restartDelayMs?: number;
}

export class KubeNamespaceCache implements NamespaceSource {
  private readonly api: CoreV1Api;
  private readonly informer: Informer<V1Namespace> & { list(): V1Namespace[]; get(name: string): V1Namespace | undefined };
  private readonly getTimeoutMs: number;
  private readonly restartDelayMs: number;
  private readonly pendingGets = new Map<string, Promise<NamespaceLookup>>();
  private listed = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Unix time in ms of the last list or watch event, for the staleness metric. */
  lastEventAt = 0;

  constructor(kubeConfig: KubeConfig, private readonly log: Logger, options: KubeNamespaceCacheOptions = {}) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.getTimeoutMs = options.getTimeoutMs ?? 2000;
    this.restartDelayMs = options.restartDelayMs ?? 1000;
    this.informer = makeInformer(kubeConfig, '/api/v1/namespaces', async () => {
      const list = await this.api.listNamespace();
      this.listed = true;
      this.lastEventAt = Date.now();
      return list;
    }) as KubeNamespaceCache['informer'];
    const touch = () => (this.lastEventAt = Date.now());
    this.informer.on('add', touch);
    this.informer.on('update', touch);
    this.informer.on('delete', touch);
    // ListWatch stops on any error but 410 Gone; start it again, keeping what it has cached.
    this.informer.on('error', (err) => {
      if (this.stopped) return;
      this.log.warn({ err: describe(err), cachedNamespaces: this.size() }, 'namespace watch failed; serving from cache, retrying');
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => void this.informer.start(), this.restartDelayMs);
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
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

  private async liveGet(name: string): Promise<NamespaceLookup> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<NamespaceLookup>((resolve) => {
      timer = setTimeout(
        () => resolve({ found: false, reason: `GET namespace ${name} timed out after ${this.getTimeoutMs} ms` }),
        this.getTimeoutMs,
      );
    });
    const get = this.api.readNamespace({ name }).then(
      (ns): NamespaceLookup => ({ found: true, labels: ns.metadata?.labels ?? {} }),
      (err): NamespaceLookup =>
        (err as { code?: number }).code === 404
          ? { found: false, reason: `namespace ${name} not found` }
          : { found: false, reason: `GET namespace ${name} failed: ${describe(err)}` },
    );
    try {
      return await Promise.race([get, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0]!;
  return String(err);
}
