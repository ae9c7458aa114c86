import { once } from 'node:events';
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config.js';

export interface ServiceLogger {
  log: Logger;
  /** Resolves once every line logged so far is written; nothing may be logged after it. */
  end(): Promise<void>;
}

/**
 * JSON lines on stdout, written asynchronously: a log reader that stalls (a full pipe) holds a
 * libuv thread, not the event loop that answers the API server. Lines are not held back: each
 * write starts at once, and lines logged while one is in flight go out together after it.
 */
export function createLogger(level: LogLevel): ServiceLogger {
  const destination = pino.destination({ dest: 1, sync: false });
  const log = pino({ level, base: { service: 'realip-webhook' } }, destination);
  return {
    log,
    // Waits for the write in flight too, which pino's own flush at exit would not.
    end: async () => {
      // A stray line after this would throw on the ended stream; the process is exiting anyway.
      log.level = 'silent';
      const closed = once(destination, 'close');
      destination.end();
      await closed;
    },
  };
}
