// Counts schedulable nodes and zones for the node-aware warnings (serve --watch-nodes). A
// list+watch keeps the counts current; until the first list they are unknown, and the warnings
// that need them are left out rather than guessed.
import type { KubeConfig, V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ListWatchCache, type ListWatchTuning, type WatchedResource } from '../kube/list-watch-cache.js';
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
 * What is counted, and the resourceVersion the watch resumes from. A Node's status (images,
 * addresses, capacity) can be tens of KiB, too much for a small webhook pod on a cluster of
 * thousands of nodes.
 */
export function slimNode(node: V1Node): V1Node {
  const zone = node.metadata?.labels?.[TOPOLOGY_KEYS.zone];
  return {
    metadata: {
      name: node.metadata?.name,
      resourceVersion: node.metadata?.resourceVersion,
      labels: zone === undefined ? {} : { [TOPOLOGY_KEYS.zone]: zone },
    },
    spec: { unschedulable: node.spec?.unschedulable },
    status: { conditions: node.status?.conditions?.filter((c) => c.type === 'Ready') },
  };
}

// Node status changes arrive in bursts; one recount per burst is enough.
const RECOUNT_DELAY_MS = 200;

export type NodeWatchOptions = ListWatchTuning;

export class NodeWatch {
  private readonly cache: ListWatchCache<V1Node>;
  private recountTimer: NodeJS.Timeout | undefined;
  private current: NodeCounts | undefined;

  constructor(kubeConfig: KubeConfig, private readonly log: Logger, options: NodeWatchOptions = {}) {
    this.cache = new ListWatchCache(kubeConfig, log, {
      ...options,
      path: '/api/v1/nodes',
      resource: 'node',
      slim: slimNode,
      // Recount on events rather than per admission request: clusters can have thousands of nodes.
      onChange: () => this.scheduleRecount(),
    });
  }

  /** The watch's health, for the metrics. */
  get watch(): WatchedResource {
    return this.cache;
  }

  /** The current counts, or undefined until the first list has arrived. */
  counts(): NodeCounts | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    await this.cache.start();
    this.recount();
  }

  async stop(): Promise<void> {
    clearTimeout(this.recountTimer);
    this.recountTimer = undefined;
    await this.cache.stop();
  }

  private scheduleRecount(): void {
    this.recountTimer ??= setTimeout(() => {
      this.recountTimer = undefined;
      this.recount();
    }, RECOUNT_DELAY_MS);
  }

  private recount(): void {
    if (!this.cache.isListed()) return;
    const before = this.current;
    this.current = countNodes(this.cache.list());
    if (before?.schedulable !== this.current.schedulable || before?.zones !== this.current.zones) {
      this.log.info({ nodes: this.current }, 'schedulable node count changed');
    }
  }
}
