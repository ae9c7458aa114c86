// Exponential backoff with jitter for list+watch restarts, after client-go's reflector (800 ms,
// doubling, capped at 30 s, forgotten after 2 min without a failure). The jitter takes each wait
// from the upper half of its step, so replicas that failed together do not retry together, and
// no wait exceeds the cap.

/** Time and timers, injected so that tests move time by hand. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** A failure this long after the previous one starts the schedule again. */
  resetAfterMs?: number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly resetAfterMs: number;
  private step = 0;
  private lastFailureAt: number | undefined;

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly random: () => number,
    options: BackoffOptions = {},
  ) {
    this.initialMs = options.initialMs ?? 800;
    this.maxMs = options.maxMs ?? 30_000;
    this.resetAfterMs = options.resetAfterMs ?? 120_000;
  }

  /** The wait before the next attempt, for a failure that happened now. */
  next(): number {
    const now = this.clock.now();
    if (this.lastFailureAt !== undefined && now - this.lastFailureAt >= this.resetAfterMs) this.step = 0;
    this.lastFailureAt = now;
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.step);
    if (ceiling < this.maxMs) this.step++;
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }
}
