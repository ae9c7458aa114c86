// The AdmissionReview envelope: checked once on arrival, so everything after works on known
// shapes. Each error names the field that was wrong and what is allowed.
import type { KubeObject } from '../mutation/objects.js';
import type { Operation } from '../mutation/mutate.js';
import type { GroupKind } from '../mutation/workload-kinds.js';
import { InvalidReviewError, typeName } from './invalid-review.js';
import { checkObjectShape } from './object-shape.js';

export const REVIEW_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type ReviewVersion = (typeof REVIEW_VERSIONS)[number];
const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: Operation;
  namespace: string;
  name: string;
  subResource: string;
  object: KubeObject | undefined;
  oldObject: KubeObject | undefined;
}

export interface AdmissionReviewRequest {
  apiVersion: ReviewVersion;
  request: AdmissionRequest;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(record: Record<string, unknown>, key: string, where: string): string {
  const value = record[key];
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw new InvalidReviewError(`${where}.${key} must be a string, got ${typeName(value)}`);
  return value;
}

export function parseReview(body: unknown): AdmissionReviewRequest {
  if (!isRecord(body)) throw new InvalidReviewError(`body must be a JSON object (an AdmissionReview), got ${typeName(body)}`);
  const { apiVersion, kind } = body;
  if (kind !== 'AdmissionReview' || !REVIEW_VERSIONS.includes(apiVersion as ReviewVersion)) {
    throw new InvalidReviewError(
      `body is not an AdmissionReview: got kind ${JSON.stringify(kind)} apiVersion ${JSON.stringify(apiVersion)}; ` +
        `allowed: kind "AdmissionReview" with apiVersion ${REVIEW_VERSIONS.map((v) => `"${v}"`).join(' or ')}`,
    );
  }
  const request = body['request'];
  if (!isRecord(request)) throw new InvalidReviewError(`request must be an object, got ${typeName(request)}`);
  const uid = request['uid'];
  if (typeof uid !== 'string' || uid === '') {
    throw new InvalidReviewError(`request.uid must be a non-empty string, got ${typeName(uid)}`);
  }
  const gvk = request['kind'];
  if (!isRecord(gvk) || typeof gvk['kind'] !== 'string' || gvk['kind'] === '') {
    throw new InvalidReviewError('request.kind must be an object {group, version, kind} with a non-empty kind');
  }
  const operation = request['operation'];
  if (!OPERATIONS.includes(operation as Operation)) {
    throw new InvalidReviewError(
      `request.operation must be one of ${OPERATIONS.join(', ')}, got ${JSON.stringify(operation)}`,
    );
  }

  const groupKind = {
    group: optionalString(gvk, 'group', 'request.kind'),
    version: optionalString(gvk, 'version', 'request.kind'),
    kind: gvk['kind'],
  };
  const parsed: AdmissionRequest = {
    uid,
    kind: groupKind,
    operation: operation as Operation,
    namespace: optionalString(request, 'namespace', 'request'),
    name: optionalString(request, 'name', 'request'),
    subResource: optionalString(request, 'subResource', 'request'),
    object: objectField(request, 'object', groupKind),
    oldObject: objectField(request, 'oldObject', groupKind),
  };
  if ((parsed.operation === 'CREATE' || parsed.operation === 'UPDATE') && !parsed.object) {
    throw new InvalidReviewError(`request.object is required for ${parsed.operation}`);
  }
  if (parsed.operation === 'UPDATE' && !parsed.oldObject) {
    throw new InvalidReviewError('request.oldObject is required for UPDATE');
  }
  return { apiVersion: apiVersion as ReviewVersion, request: parsed };
}

/** The object or oldObject, when present, with the type of every field the features read checked. */
function objectField(request: Record<string, unknown>, key: 'object' | 'oldObject', kind: GroupKind): KubeObject | undefined {
  const value = request[key];
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw new InvalidReviewError(`request.${key} must be an object, got ${typeName(value)}`);
  checkObjectShape(value, kind, `request.${key}`);
  return value as KubeObject;
}
