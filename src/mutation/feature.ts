import type { AddOperation } from './json-patch.js';

/** What one feature decided for one object: the operations to apply, or why it did nothing. */
export type FeatureResult =
  | { applied: true; ops: AddOperation[]; change: string; warning: string }
  | { applied: false; skip: string; warning?: string };

export function skipped(skip: string, warning?: string): FeatureResult {
  return { applied: false, skip, warning };
}

/** Warnings go to kubectl users; keep each on one line well under the API server's 256-character cut. */
export const WARNING_PREFIX = 'realip-webhook: ';
