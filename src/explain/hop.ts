// The shape of `explain`'s answer: one hop of the client's address on its way to the app, what
// explain read there, its verdict and the fix. Every hop module returns one of these.

export type Verdict = 'kept' | 'lost' | 'at risk' | 'unknown';

export type HopName = 'entry' | 'L4' | 'spread' | 'in the pod' | 'L7';

export interface Hop {
  hop: HopName;
  verdict: Verdict;
  /** What explain read, one fact a line. */
  evidence: string[];
  /** The change that keeps the address, when the verdict is not kept. */
  fix?: string;
  /**
   * What the next hop receives as the client's address when this hop decides it (e.g. "a node
   * IP"); the final verdict names the first such loss.
   */
  sees?: string;
}

/** A fact read from the cluster, or why it could not be read ("cannot list pods: forbidden"). */
export type Readable<T> = { ok: true; value: T } | { ok: false; reason: string };

export const known = <T>(value: T): Readable<T> => ({ ok: true, value });

/** Words the final sentence and the data-path test rely on: the pod saw exactly these. */
export const SEES = {
  client: 'the client IP',
  node: 'a node IP',
  sidecar: '127.0.0.6',
  loadBalancer: "the load balancer's own IP",
} as const;
