import type { NamespaceLookup } from '../admission/admit.js';

/** Where the webhook reads namespace labels: a cluster (watch-backed cache) or a file. */
export interface NamespaceSource {
  lookup(name: string): Promise<NamespaceLookup>;
  /** False until the first full list has arrived. */
  isReady(): boolean;
  size(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
}
