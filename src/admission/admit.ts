// The one function between transport and logic: from a parsed review and its namespace to the
// response review. No I/O, so it is tested without a server.
import { mutate, type MutationResult } from '../mutation/mutate.js';
import { objectName } from '../mutation/objects.js';
import type { Labels } from '../mutation/settings.js';
import { WARNING_PREFIX } from '../mutation/feature.js';
import type { NodeCounts } from '../mutation/scheduling-warnings.js';
import type { AdmissionReviewRequest, ReviewVersion } from './review.js';
import { errorMessage } from '../errors.js';

export type NamespaceLookup = { found: true; labels: Labels } | { found: false; reason: string };

export interface AdmitOptions {
  labelPrefix: string;
  failClosed: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewResponse {
  apiVersion: ReviewVersion;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** What a log line says of one admission; never the object itself. */
export interface AdmissionSummary {
  uid: string;
  kind: string;
  namespace: string;
  name: string;
  operation: string;
  outcome: 'patched' | 'unchanged' | 'error';
  changes: string[];
  skips: string[];
  warnings: string[];
  /** The object as a whole was out of scope (kind, operation, opt-out, subresource, ...). */
  skipped?: true;
  error?: string;
  /** Time from the body parsed to the answer built, set by the transport just before logging. */
  durationMs?: number;
}

/** Thrown only under --fail-closed: the server answers 500 and the webhook's failurePolicy decides. */
export class FailClosedError extends Error {
  // Stryker disable next-line StringLiteral: only names the error in a stack dump; the server tells errors apart by class
  override name = 'FailClosedError';
}

/** `nodes`: the node watch's current counts, when it runs and has listed; they only add warnings. */
export function admit(review: AdmissionReviewRequest, namespace: NamespaceLookup, options: AdmitOptions, nodes?: NodeCounts) {
  const { request } = review;
  let result: MutationResult;
  let error: string | undefined;
  try {
    result = decide(review, namespace, options, nodes);
  } catch (err) {
    error = errorMessage(err);
    // Stryker disable next-line ObjectLiteral: the cause is for a debugger; the server logs the message
    if (options.failClosed) throw new FailClosedError(error, { cause: err });
    result = {
      ops: [],
      changes: [],
      skips: [],
      warnings: [`${WARNING_PREFIX}object admitted unchanged: ${error}`],
    };
  }

  const object = request.object ?? request.oldObject;
  const summary: AdmissionSummary = {
    uid: request.uid,
    kind: request.kind.kind,
    namespace: request.namespace,
    name: request.name || (object ? objectName(object) : ''),
    operation: request.operation,
    outcome: error === undefined ? 'unchanged' : 'error',
    changes: result.changes,
    skips: result.skips,
    warnings: result.warnings,
    skipped: result.skipped,
    error,
  };
  const response: AdmissionResponse = { uid: request.uid, allowed: true };
  if (result.ops.length > 0) {
    summary.outcome = 'patched';
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(result.ops)).toString('base64');
    response.auditAnnotations = { mutations: result.changes.join(',') };
  }
  if (result.warnings.length > 0) response.warnings = result.warnings;
  const reviewResponse: AdmissionReviewResponse = { apiVersion: review.apiVersion, kind: 'AdmissionReview', response };
  return { review: reviewResponse, summary };
}

function decide(
  review: AdmissionReviewRequest,
  namespace: NamespaceLookup,
  options: AdmitOptions,
  nodes: NodeCounts | undefined,
): MutationResult {
  const { request } = review;
  const nothing = (skip: string): MutationResult => ({ ops: [], warnings: [], changes: [], skips: [skip], skipped: true });
  if (request.subResource) return nothing(`subresource ${request.subResource} is not handled`);
  if (!request.object) return nothing(`operation ${request.operation} carries no object`);
  // request.namespace, not metadata.namespace: the latter is empty on generateName creates.
  if (!request.namespace) return nothing('request has no namespace');
  if (!namespace.found) throw new Error(`labels of namespace ${request.namespace} unknown: ${namespace.reason}`);
  return mutate({
    kind: request.kind,
    operation: request.operation,
    object: request.object,
    oldObject: request.oldObject,
    namespaceLabels: namespace.labels,
    labelPrefix: options.labelPrefix,
    nodes,
  });
}
