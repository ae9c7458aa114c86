import type { NamespaceLookup } from '../admission/admit.js';
import type { WatchedResource } from '../kube/list-watch-cache.js';

/** Where the webhook reads namespace labels: a cluster (watch-backed cache) or a file. */
export interface NamespaceSource {
  lookup(name: string): Promise<NamespaceLookup>;
  /** False until the first full list has arrived. */
  isReady(): boolean;
  size(): number;
  /**
   * Unix time in ms when the labels were last confirmed (a list, a watch event, a resync, or
   * reading the file); 0 or absent when never. Only read for the staleness metric.
   */
  readonly lastEventAt?: number;
  /** The list+watch behind a cluster source, for the watch health metrics. */
  readonly watch?: WatchedResource;
  start(): Promise<void>;
  stop(): Promise<void>;
}
