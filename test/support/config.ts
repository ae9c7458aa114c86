// Assertions on the errors of parseServeConfig, which an operator reads when serve refuses to start.
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config.js';

/** Asserts that `fn` throws a ConfigError whose message matches every pattern. */
export function assertConfigError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}
