// A pino logger whose output the test reads back: the server under test logs through it, and the
// assertions look at the lines an operator would see, both parsed and exactly as written.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Json } from './json.js';

export interface CapturedLogs {
  logger: Logger;
  /** Every log line, parsed, in order. */
  lines: Json[];
  /** Every log line as written, in the same order. */
  raw: string[];
}

/** A logger at level info with the service name the CLI sets, writing into memory. */
export function captureLogs(): CapturedLogs {
  const raw: string[] = [];
  const lines: Json[] = [];
  const destination = new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Json);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'info', base: { service: 'realip-webhook' } }, destination), lines, raw };
}
