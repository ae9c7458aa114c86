// Applies a webhook's patch the way the API server would: RFC 6902 with validation, so an `add`
// under a missing parent or a bad pointer fails here as it would there.
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';

export function applyStrict<T>(object: T, ops: readonly unknown[]): T {
  const copy = structuredClone(object);
  return jsonpatch.applyPatch(copy, ops as Operation[], true, false).newDocument;
}

export function decodePatch(patch: string | undefined): unknown[] {
  return patch === undefined ? [] : (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as unknown[]);
}
