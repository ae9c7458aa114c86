// Bounds that keep slow or abusive clients and overload from taking the webhook down. The API
// server sends a whole review at once and gives up after the webhook's timeoutSeconds (5 s in
// manifests/base), so a request still arriving after a few seconds serves no one: the timeouts
// below sit under that, yet are orders of magnitude above a legitimate request (milliseconds).
import type { Server } from 'node:net';
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { Logger } from 'pino';

export interface ServerLimits {
  /** A TLS handshake not finished by then is dropped (Node's default is 120 s). */
  handshakeTimeoutMs: number;
  /** A request's headers must arrive within this time of its first byte (slowloris). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this time of its first byte. */
  requestTimeoutMs: number;
  /** A connection idle this long while a request is open (or before the first one) is closed. */
  idleTimeoutMs: number;
  /** How often Node checks the two timeouts above; they can overrun by up to this much. */
  timeoutCheckIntervalMs: number;
  /** Connections beyond this are closed on arrival. */
  maxConnections: number;
  /**
   * A keep-alive connection older than this (from its first answer) gets `Connection: close` on
   * its next answer, so the API server dials again through the Service and spreads over replicas.
   */
  maxConnectionAgeMs: number;
  /** Shed POST /mutate with 503 while the event loop lags more than this on average. */
  maxEventLoopDelayMs: number;
  /** Shed POST /mutate with 503 while the V8 heap holds more than this; 0 turns the check off. */
  maxHeapUsedBytes: number;
  /** Shed POST /mutate with 503 while the process uses more memory than this; 0 turns the check off. */
  maxRssBytes: number;
  /** Retry-After of a shed request. */
  retryAfterSeconds: number;
}

/** Limits for a production server in this process; a test passes smaller ones. */
export function defaultLimits(): ServerLimits {
  const memoryLimit = containerMemoryLimit();
  return {
    handshakeTimeoutMs: 3_000,
    headersTimeoutMs: 3_000,
    requestTimeoutMs: 4_000,
    idleTimeoutMs: 4_000,
    timeoutCheckIntervalMs: 500,
    // The API servers hold a few pooled connections each. 512 TLS connections (~50 KiB each)
    // fit beside the process in the 256 MiB limit of manifests/base.
    maxConnections: 512,
    // The API server keeps its connections as long as they are used: after a replica restarts,
    // the other one would serve every request on and a crash would hit them all. Closing after
    // 30 s (the client then redials through the Service, whose endpoints spread) restores the
    // balance within 30 s, and costs one TLS handshake per connection per 30 s (~0.6 ms CPU).
    // A close on an answer races nothing: the client reads it and never reuses the connection.
    maxConnectionAgeMs: 30_000,
    // A fifth of timeoutSeconds: past that, queued requests would time out at the API server,
    // and a quick 503 lets it apply the failurePolicy at once instead.
    maxEventLoopDelayMs: 1_000,
    // Shed before V8 aborts the process on a full heap...
    maxHeapUsedBytes: Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    // ...and before the kernel OOM-kills the container.
    maxRssBytes: memoryLimit ? Math.floor(memoryLimit * 0.9) : 0,
    retryAfterSeconds: 1,
  };
}

/** The cgroup memory limit, or undefined outside a container (Node reports 2^64 or 0 then). */
function containerMemoryLimit(): number | undefined {
  const limit = process.constrainedMemory();
  return limit > 0 && limit < totalmem() ? limit : undefined;
}

/**
 * @fastify/under-pressure options for the admission route: a clear JSON 503 and a log line per
 * shed request, so both the API server (Retry-After) and the operator see why.
 */
export function loadShedding(limits: ServerLimits, log: Logger): FastifyUnderPressureOptions {
  const thresholds: Record<string, number> = {
    eventLoopDelay: limits.maxEventLoopDelayMs,
    heapUsedBytes: limits.maxHeapUsedBytes,
    rssBytes: limits.maxRssBytes,
  };
  return {
    maxEventLoopDelay: limits.maxEventLoopDelayMs,
    maxHeapUsedBytes: limits.maxHeapUsedBytes,
    maxRssBytes: limits.maxRssBytes,
    pressureHandler: (req, reply, type, value) => {
      const measured = value === undefined ? 'unknown' : String(Math.round(value));
      const limit = thresholds[type];
      log.warn({ reqId: req.id, type, value: measured, limit }, 'shed a request: the webhook is overloaded');
      void reply
        .code(503)
        .header('retry-after', String(limits.retryAfterSeconds))
        .send({
          error: 'Overloaded',
          message: `the webhook is overloaded (${type} ${measured} is over the limit of ${limit}); retry in ${limits.retryAfterSeconds} s`,
        });
    },
  };
}

/** How often a flood of connections over maxConnections is summed up in the log. */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Reports connections the server closed on arrival because it held maxConnections: each to
 * `onDrop` (the metric), and in the log once per burst, not once per connection, so a flood of
 * connections cannot also flood the log.
 */
export function reportDroppedConnections(server: Server, maxConnections: number, log: Logger, onDrop: () => void): void {
  let dropped = 0;
  server.on('drop', () => {
    onDrop();
    if (dropped++ > 0) return;
    log.warn({ maxConnections }, `closed a connection on arrival: already holding the maximum of ${maxConnections}`);
    setTimeout(() => {
      if (dropped > 1) {
        log.warn({ maxConnections, dropped }, `closed ${dropped} connections on arrival in ${DROP_LOG_INTERVAL_MS / 1000} s: already holding the maximum of ${maxConnections}`);
      }
      dropped = 0;
    }, DROP_LOG_INTERVAL_MS).unref();
  });
}
