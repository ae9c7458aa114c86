// SIGTERM/SIGINT: turn unready at once, keep serving through a short drain so load balancers and
// the API server's endpoint view catch up, then stop accepting, finish in-flight requests and
// exit 0, all within a bound. close-with-grace owns the signal (and crash) plumbing.
import closeWithGrace from 'close-with-grace';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';

/**
 * Serving on while unready. manifests/base also sleeps 5 s in preStop before the signal, so this
 * only covers a SIGTERM that comes without one (docker stop, another orchestrator).
 */
export const SHUTDOWN_DRAIN_MS = 2_000;
/**
 * Bound on closing after the drain. An in-flight request is bounded by the request timeout
 * (limits.ts) plus the namespace GET of a cache miss, a few seconds; past this the process exits 1.
 * Drain + this stays inside the 30 s terminationGracePeriodSeconds of manifests/base.
 */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

export class GracefulShutdown {
  private started = false;

  constructor(
    private readonly log: Logger,
    private readonly drainMs = SHUTDOWN_DRAIN_MS,
    private readonly timeoutMs = SHUTDOWN_TIMEOUT_MS,
  ) {}

  /** True from the signal on: /readyz answers 503. */
  readonly isShuttingDown = (): boolean => this.started;

  /**
   * On SIGTERM, SIGINT or a crash: drain, then `close` everything, then exit (0, or 1 after a crash).
   * `endLog` runs last, so the lines of the shutdown itself are written before the exit.
   */
  install(close: () => Promise<void>, endLog?: () => Promise<void>): void {
    const { log, drainMs, timeoutMs } = this;
    closeWithGrace(
      {
        delay: drainMs + timeoutMs,
        logger: { error: (err: unknown) => log.error({ err: errorMessage(err) }, 'shutdown failed') },
        onTimeout: (delay) => log.error({ delayMs: delay }, `shutdown did not finish within ${delay} ms; exiting 1`),
        onSecondSignal: (signal) => log.warn({ signal }, `second ${signal} during shutdown; exiting 1 now`),
        onSecondError: (err) => log.error({ err: errorMessage(err) }, 'another error during shutdown; exiting 1 now'),
      },
      async ({ signal, err }) => {
        this.started = true;
        if (err) {
          // After a crash the process state is suspect: no drain, just close what can be closed.
          log.fatal({ err: errorMessage(err), stack: err.stack }, 'unexpected error; shutting down');
        } else {
          log.info({ signal, drainMs }, 'shutting down');
          await sleep(drainMs);
        }
        log.info('no longer accepting connections; finishing in-flight requests');
        await close();
        log.info('shut down');
        await endLog?.();
      },
    );
  }
}
