// Counts schedulable nodes and zones for the node-aware warnings (serve --watch-nodes). A
// list+watch keeps the counts current; until the first list they are unknown, and the warnings
// that need them are left out rather than guessed.
import { CoreV1Api, makeInformer, type Informer, type KubeConfig, type ObjectCache, type V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { TOPOLOGY_KEYS } from '../mutation/anti-affinity.js';
import type { NodeCounts } from '../mutation/scheduling-warnings.js';

/** Cordoned nodes and nodes whose Ready condition is not True take no new pods. */
export function isSchedulable(node: V1Node): boolean {
  if (node.spec?.unschedulable) return false;
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function countNodes(nodes: readonly V1Node[]): NodeCounts {
  const schedulable = nodes.filter(isSchedulable);
  const zones = new Set(schedulable.flatMap((n) => n.metadata?.labels?.[TOPOLOGY_KEYS.zone] ?? []));
  return { schedulable: schedulable.length, zones: zones.size };
}

/**
 * Keeps only what is counted. The informer caches the very object it hands to its event
 * handlers, so this trims the cache: a Node's status (images, addresses, capacity) can be tens of
 * KiB, too much for a small webhook pod on a cluster of thousands of nodes.
 */
export function slimNode(node: V1Node): void {
  const zone = node.metadata?.labels?.[TOPOLOGY_KEYS.zone];
  node.metadata = {
    name: node.metadata?.name,
    resourceVersion: node.metadata?.resourceVersion,
    labels: zone === undefined ? {} : { [TOPOLOGY_KEYS.zone]: zone },
  };
  node.spec = { unschedulable: node.spec?.unschedulable };
  node.status = { conditions: node.status?.conditions?.filter((c) => c.type === 'Ready') };
}

// Node status changes arrive in bursts; one recount per burst is enough.
const RECOUNT_DELAY_MS = 200;

export interface NodeWatchOptions {
  /** Wait before listing again after the list or watch failed. */
  restartDelayMs?: number;
}

export class NodeWatch {
  private readonly informer: Informer<V1Node> & ObjectCache<V1Node>;
  private readonly restartDelayMs: number;
  private listed = false;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private recountTimer: NodeJS.Timeout | undefined;
  private current: NodeCounts | undefined;

  constructor(kubeConfig: KubeConfig, private readonly log: Logger, options: NodeWatchOptions = {}) {
    const api = kubeConfig.makeApiClient(CoreV1Api);
    this.restartDelayMs = options.restartDelayMs ?? 1000;
    this.informer = makeInformer(kubeConfig, '/api/v1/nodes', async () => {
      const list = await api.listNode();
      this.listed = true;
      return list;
    });
    // Recount on events rather than per admission request: clusters can have thousands of nodes.
    const changed = (node: V1Node) => {
      slimNode(node);
      this.scheduleRecount();
    };
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', () => this.scheduleRecount());
    // ListWatch stops on any error but 410 Gone; start it again, keeping the last counts.
    this.informer.on('error', (err) => {
      if (this.stopped) return;
      this.log.warn({ err: err instanceof Error ? err.message : String(err), nodes: this.current }, 'node watch failed; keeping the last counts, retrying');
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => void this.informer.start(), this.restartDelayMs);
    });
  }

  /** The current counts, or undefined until the first list has arrived. */
  counts(): NodeCounts | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
    this.recount();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.recountTimer);
    this.recountTimer = undefined;
    await this.informer.stop();
  }

  private scheduleRecount(): void {
    this.recountTimer ??= setTimeout(() => {
      this.recountTimer = undefined;
      this.recount();
    }, RECOUNT_DELAY_MS);
  }

  private recount(): void {
    if (!this.listed) return;
    const before = this.current;
    this.current = countNodes(this.informer.list());
    if (before?.schedulable !== this.current.schedulable || before?.zones !== this.current.zones) {
      this.log.info({ nodes: this.current }, 'schedulable node count changed');
    }
  }
}
