// admit(): the pure function between transport and logic, tested without a server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admit, FailClosedError, type NamespaceLookup } from '../../src/admission/admit.js';
import { parseReview } from '../../src/admission/review.js';
import * as fx from '../fixtures/objects.js';
import { applyStrict, decodePatch } from '../support/patch.js';

const OPTED_IN: NamespaceLookup = { found: true, labels: { 'realip.io/inject': 'enabled' } };
const OPEN = { labelPrefix: 'realip.io', failClosed: false };
const CLOSED = { labelPrefix: 'realip.io', failClosed: true };

describe('admit', () => {
  for (const apiVersion of ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const) {
    test(`answers in the request's version (${apiVersion}) and echoes the uid`, () => {
      const body = fx.review(fx.service('NodePort'), { apiVersion, uid: 'uid-123' });
      const { review } = admit(parseReview(body), OPTED_IN, OPEN);
      assert.equal(review.apiVersion, apiVersion);
      assert.equal(review.kind, 'AdmissionReview');
      assert.equal(review.response.uid, 'uid-123');
      assert.equal(review.response.allowed, true);
    });
  }

  test('a change is sent as a base64 JSONPatch with warnings and audit annotations', () => {
    const object = fx.deployment();
    const { review, summary } = admit(parseReview(fx.review(object)), OPTED_IN, OPEN);
    const { response } = review;
    assert.equal(response.patchType, 'JSONPatch');
    const mutated = applyStrict(object, decodePatch(response.patch));
    assert.equal(mutated.spec.template.metadata.annotations['sidecar.istio.io/interceptionMode'], 'TPROXY');
    assert.equal(response.warnings?.length, 2);
    assert.deepEqual(response.auditAnnotations, { mutations: 'anti-affinity=preferred/hostname,istio-interception=TPROXY' });
    assert.equal(summary.outcome, 'patched');
    assert.equal(summary.name, 'source-ip-app');
    assert.equal(summary.skipped, undefined, 'in scope: not counted as skipped');
  });

  test('nothing to change: no patchType, no patch, no audit annotations', () => {
    const { review, summary } = admit(parseReview(fx.review(fx.service('ClusterIP'))), OPTED_IN, OPEN);
    assert.deepEqual(Object.keys(review.response).sort(), ['allowed', 'uid']);
    assert.equal(summary.outcome, 'unchanged');
    assert.ok(summary.skips.length > 0);
  });

  test('uses request.namespace: a generateName Pod with empty metadata.namespace is mutated', () => {
    const pod = fx.generateNamePod();
    const { review, summary } = admit(parseReview(fx.review(pod, { namespace: 'demo' })), OPTED_IN, OPEN);
    assert.equal(review.response.patchType, 'JSONPatch');
    assert.equal(summary.namespace, 'demo');
    assert.equal(summary.name, 'source-ip-app-7d4b9c-*');
  });

  test('a request without a namespace is admitted unchanged', () => {
    const { review, summary } = admit(parseReview(fx.review(fx.pod(), { namespace: '' })), OPTED_IN, OPEN);
    assert.equal(review.response.patch, undefined);
    assert.match(summary.skips.join(), /no namespace/);
  });

  test('a subresource request is admitted unchanged and silently, counted as skipped', () => {
    const body = fx.review(fx.deployment(), { operation: 'UPDATE', oldObject: fx.deployment() });
    body['request'].subResource = 'scale';
    const { review, summary } = admit(parseReview(body), OPTED_IN, OPEN);
    assert.deepEqual(Object.keys(review.response).sort(), ['allowed', 'uid']);
    assert.deepEqual(summary.skips, ['subresource scale is not handled']);
    assert.deepEqual(summary.changes, []);
    assert.equal(summary.skipped, true);
  });

  test('a DELETE is admitted without its namespace labels: no warning even when they are unknown', () => {
    const body = fx.review(fx.deployment(), { operation: 'DELETE', oldObject: fx.deployment() });
    body['request'].object = null;
    body['request'].name = '';
    const lookup: NamespaceLookup = { found: false, reason: 'the API server is unreachable' };
    const { review, summary } = admit(parseReview(body), lookup, OPEN);
    assert.deepEqual(Object.keys(review.response).sort(), ['allowed', 'uid']);
    assert.equal(summary.outcome, 'unchanged');
    assert.equal(summary.skipped, true);
    assert.match(summary.skips.join(), /DELETE carries no object/);
    assert.equal(summary.name, 'source-ip-app', 'the name is read from the oldObject');
  });

  test('the logged name is empty, not made up, when neither the request nor the object has one', () => {
    const connect = fx.review(fx.pod(), { operation: 'CONNECT' });
    connect['request'].name = '';
    connect['request'].object = null;
    assert.equal(admit(parseReview(connect), OPTED_IN, OPEN).summary.name, '');
    const unnamed = fx.review({ apiVersion: 'v1', kind: 'ConfigMap', data: {} });
    const { review, summary } = admit(parseReview(unnamed), OPTED_IN, OPEN);
    assert.equal(summary.name, '');
    assert.equal(review.response.allowed, true);
  });

  test('unknown namespace labels: fail open admits unchanged with a warning naming the namespace', () => {
    const lookup: NamespaceLookup = { found: false, reason: 'GET namespace demo timed out after 2000 ms' };
    const { review, summary } = admit(parseReview(fx.review(fx.deployment())), lookup, OPEN);
    assert.equal(review.response.allowed, true);
    assert.equal(review.response.patch, undefined);
    assert.equal(review.response.warnings?.length, 1);
    assert.match(review.response.warnings![0]!, /admitted unchanged: labels of namespace demo unknown: GET namespace demo timed out/);
    assert.equal(summary.outcome, 'error');
    assert.deepEqual([summary.changes, summary.skips], [[], []], 'the log line claims no change and no skip, only the error');
  });

  test('unknown namespace labels: fail closed throws FailClosedError', () => {
    const lookup: NamespaceLookup = { found: false, reason: 'namespace demo not found' };
    assert.throws(() => admit(parseReview(fx.review(fx.deployment())), lookup, CLOSED), FailClosedError);
  });

  test('an internal error while mutating fails open with a warning, or throws under fail-closed', () => {
    // Labels whose read throws stand in for any bug inside a feature.
    const broken = new Proxy({}, { get: () => { throw new Error('boom'); } });
    const lookup: NamespaceLookup = { found: true, labels: broken };
    const { review, summary } = admit(parseReview(fx.review(fx.deployment())), lookup, OPEN);
    assert.equal(review.response.allowed, true);
    assert.equal(review.response.patch, undefined);
    assert.match(review.response.warnings![0]!, /admitted unchanged: boom/);
    assert.equal(summary.error, 'boom');
    assert.throws(() => admit(parseReview(fx.review(fx.deployment())), lookup, CLOSED), /boom/);
  });

  test('every warning is one line under the 256-character truncation', () => {
    const labels = {
      'realip.io/inject': 'enabled',
      'realip.io/anti-affinity': 'x'.repeat(63),
      'pod-security.kubernetes.io/enforce': 'restricted',
    };
    const { review } = admit(parseReview(fx.review(fx.deployment())), { found: true, labels }, OPEN);
    assert.ok(review.response.warnings!.length >= 2);
    for (const w of review.response.warnings!) {
      assert.ok(w.length < 256, `${w.length} chars: ${w}`);
      assert.ok(!w.includes('\n'));
    }
  });
});
