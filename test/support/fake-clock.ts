// A clock that moves only when the test says so, for the list+watch cache's deadlines and backoff:
// the test sees each timer the code sets and fires it by advancing time, so nothing waits on the
// wall clock and no assertion depends on how fast the machine is.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../src/kube/backoff.js';

interface Timer {
  id: number;
  due: number;
  ms: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  private time = 1_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, Timer>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, due: this.time + ms, ms, callback };
    this.timers.set(timer.id, timer);
    return timer.id;
  }

  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as number);
  }

  /** The durations of the timers not fired or cleared yet, in the order they were set. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const next = [...this.timers.values()].filter((t) => t.due <= until).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!next) break;
      this.timers.delete(next.id);
      this.time = next.due;
      next.callback();
    }
    this.time = until;
  }

  /** Waits (on real I/O, bounded) until the code under test has set a timer of `ms`. */
  async timerSet(ms: number, boundMs = 5000): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (!this.pending().includes(ms)) {
      if (Date.now() > deadline) throw new Error(`no timer of ${ms} ms was set within ${boundMs} ms (pending: ${this.pending().join(', ') || 'none'})`);
      await sleep(5);
    }
  }
}
