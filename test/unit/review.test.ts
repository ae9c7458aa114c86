// parseReview(): every way a body can fail to be a usable AdmissionReview, each with an error
// that names the field and what is allowed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidReviewError } from '../../src/admission/invalid-review.js';
import { parseReview } from '../../src/admission/review.js';
import * as fx from '../fixtures/objects.js';

type Json = Record<string, any>;

function withRequest(change: (request: Json) => void, object: Json = fx.deployment()): Json {
  const body = fx.review(object);
  change(body['request']);
  return body;
}

const cases: [name: string, body: unknown, message: RegExp][] = [
  ['a JSON array', [], /body must be a JSON object \(an AdmissionReview\), got array/],
  ['a string', 'hello', /got string/],
  ['null', null, /body must be a JSON object \(an AdmissionReview\), got null/],
  ['another kind with the review apiVersion', { ...fx.review(fx.pod()), kind: 'AdmissionRequest' }, /not an AdmissionReview: got kind "AdmissionRequest"/],
  ['another kind', { apiVersion: 'v1', kind: 'Pod' }, /not an AdmissionReview: got kind "Pod" apiVersion "v1"; allowed: kind "AdmissionReview" with apiVersion "admission.k8s.io\/v1" or "admission.k8s.io\/v1beta1"/],
  ['an unknown review version', { ...fx.review(fx.pod()), apiVersion: 'admission.k8s.io/v2' }, /apiVersion "admission.k8s.io\/v2"/],
  ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request must be an object, got undefined/],
  ['no uid', withRequest((r) => delete r['uid']), /request\.uid must be a non-empty string, got undefined/],
  ['an empty uid', withRequest((r) => (r['uid'] = '')), /request\.uid must be a non-empty string/],
  ['no kind', withRequest((r) => delete r['kind']), /request\.kind must be an object/],
  ['a numeric kind', withRequest((r) => (r['kind'].kind = 5)), /request\.kind must be an object \{group, version, kind\} with a non-empty kind/],
  ['an empty kind', withRequest((r) => (r['kind'].kind = '')), /request\.kind must be an object \{group, version, kind\} with a non-empty kind/],
  ['a numeric group', withRequest((r) => (r['kind'].group = 1)), /request\.kind\.group must be a string, got number/],
  ['a numeric version', withRequest((r) => (r['kind'].version = 1)), /request\.kind\.version must be a string, got number/],
  ['a numeric name', withRequest((r) => (r['name'] = 1)), /request\.name must be a string, got number/],
  ['a list as subResource', withRequest((r) => (r['subResource'] = ['scale'])), /request\.subResource must be a string, got array/],
  ['an unknown operation', withRequest((r) => (r['operation'] = 'PATCH')), /request\.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got "PATCH"/],
  ['a numeric namespace', withRequest((r) => (r['namespace'] = 7)), /request\.namespace must be a string, got number/],
  ['CREATE without object', withRequest((r) => delete r['object']), /request\.object is required for CREATE/],
  ['UPDATE without oldObject', withRequest((r) => (r['operation'] = 'UPDATE')), /request\.oldObject is required for UPDATE/],
  [
    'UPDATE without object',
    withRequest((r) => {
      r['operation'] = 'UPDATE';
      r['oldObject'] = r['object'];
      r['object'] = null;
    }),
    /request\.object is required for UPDATE/,
  ],
  ['object an array', withRequest((r) => (r['object'] = [])), /request\.object must be an object, got array/],
  ['spec a string', withRequest((r) => (r['object'].spec = 'x')), /request\.object\.spec must be an object, got string/],
  ['metadata a string', withRequest((r) => (r['object'].metadata = 'x')), /request\.object\.metadata must be an object/],
  ['annotations with a number value', withRequest((r) => (r['object'].metadata.annotations = { a: 1 })), /request\.object\.metadata\.annotations must be a map of strings/],
  ['labels with one number among strings', withRequest((r) => (r['object'].metadata.labels = { app: 'a', tier: 2 })), /request\.object\.metadata\.labels must be a map of strings/],
  ['template labels with a number value', withRequest((r) => (r['object'].spec.template.metadata.labels = { app: 1 })), /request\.object\.spec\.template\.metadata\.labels must be a map of strings, got object/],
  ['template spec a string', withRequest((r) => (r['object'].spec.template.spec = 'x')), /request\.object\.spec\.template\.spec must be an object, got string/],
  ['template a list', withRequest((r) => (r['object'].spec.template = [])), /request\.object\.spec\.template must be an object, got array/],
  ['template annotations a list', withRequest((r) => (r['object'].spec.template.metadata.annotations = ['a'])), /request\.object\.spec\.template\.metadata\.annotations must be a map of strings/],
  ['affinity a string', withRequest((r) => (r['object'].spec.template.spec.affinity = 'near')), /request\.object\.spec\.template\.spec\.affinity must be an object/],
  ['podAntiAffinity a string', withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: 'spread' })), /spec\.affinity\.podAntiAffinity must be an object, got string/],
  [
    'the required terms a map, not a list',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { topologyKey: 'zone' } } })),
    /podAntiAffinity\.requiredDuringSchedulingIgnoredDuringExecution must be an array, got object/,
  ],
  [
    'the preferred terms a string',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: 'x' } })),
    /podAntiAffinity\.preferredDuringSchedulingIgnoredDuringExecution must be an array, got string/,
  ],
  [
    'a preferred podAffinityTerm a string',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: 'x' }] } })),
    /preferredDuringSchedulingIgnoredDuringExecution\[0\]\.podAffinityTerm must be an object, got string/,
  ],
  [
    'a required anti-affinity term not an object',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: ['x'] } })),
    /podAntiAffinity\.requiredDuringSchedulingIgnoredDuringExecution\[0\] must be an object, got string/,
  ],
  [
    'the second required term without a string topologyKey',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'zone' }, { topologyKey: ['zone'] }] } })),
    /podAntiAffinity\.requiredDuringSchedulingIgnoredDuringExecution\[1\]\.topologyKey must be a string, got array/,
  ],
  [
    'a preferred term topologyKey a number',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: 5 } }] } })),
    /preferredDuringSchedulingIgnoredDuringExecution\[0\]\.podAffinityTerm\.topologyKey must be a string, got number/,
  ],
  [
    'a null preferred anti-affinity term',
    withRequest((r) => (r['object'].spec.template.spec.affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [null] } })),
    /preferredDuringSchedulingIgnoredDuringExecution\[0\] must be an object, got null/,
  ],
  ['selector a string', withRequest((r) => (r['object'].spec.selector = 'app=web')), /request\.object\.spec\.selector must be an object, got string/],
  ['selector matchExpressions a map', withRequest((r) => (r['object'].spec.selector = { matchExpressions: { key: 'app' } })), /request\.object\.spec\.selector\.matchExpressions must be an array, got object/],
  ['selector matchLabels with a list value', withRequest((r) => (r['object'].spec.selector = { matchLabels: { app: ['a'] } })), /request\.object\.spec\.selector\.matchLabels must be a map of strings/],
  ['a CronJob jobTemplate a string', withRequest((r) => (r['object'].spec.jobTemplate = 'x'), fx.cronJob()), /request\.object\.spec\.jobTemplate must be an object/],
  ['a Service type a number', withRequest((r) => (r['object'].spec.type = 1), fx.service('NodePort')), /request\.object\.spec\.type must be a string, got number/],
  ['a Service externalTrafficPolicy a number', withRequest((r) => (r['object'].spec.externalTrafficPolicy = 0), fx.service('NodePort')), /request\.object\.spec\.externalTrafficPolicy must be a string, got number/],
  ['a Service spec a string', withRequest((r) => (r['object'].spec = 'x'), fx.service('NodePort')), /request\.object\.spec must be an object, got string/],
  [
    'an ill-typed oldObject',
    withRequest((r) => {
      r['operation'] = 'UPDATE';
      r['oldObject'] = { ...fx.deployment(), spec: 5 };
    }),
    /request\.oldObject\.spec must be an object, got number/,
  ],
];

describe('parseReview rejects', () => {
  for (const [name, body, message] of cases) {
    test(name, () => {
      assert.throws(() => parseReview(body), (err: unknown) => {
        assert.ok(err instanceof InvalidReviewError, `InvalidReviewError, got ${String(err)}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('parseReview accepts', () => {
  test('a full v1 review as the API server sends it', () => {
    const parsed = parseReview(fx.review(fx.deployment(), { operation: 'UPDATE', oldObject: fx.deployment() }));
    assert.equal(parsed.apiVersion, 'admission.k8s.io/v1');
    assert.deepEqual(parsed.request.kind, { group: 'apps', version: 'v1', kind: 'Deployment' });
    assert.equal(parsed.request.operation, 'UPDATE');
    assert.deepEqual([parsed.request.name, parsed.request.namespace, parsed.request.subResource], ['source-ip-app', 'demo', '']);
    assert.ok(parsed.request.oldObject);
  });

  test('a DELETE without object (only the oldObject)', () => {
    const body = fx.review(fx.deployment(), { operation: 'DELETE', oldObject: fx.deployment() });
    body['request'].object = null;
    assert.equal(parseReview(body).request.object, undefined);
  });

  test('a Deployment whose template has required and preferred anti-affinity terms', () => {
    const term = { labelSelector: { matchLabels: { app: 'a' } }, topologyKey: 'kubernetes.io/hostname' };
    const template = fx.podTemplate({
      spec: {
        affinity: {
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [term, { ...term, topologyKey: 'topology.kubernetes.io/zone' }],
            preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: term }],
          },
        },
      },
    });
    assert.doesNotThrow(() => parseReview(fx.review(fx.deployment({ template }))));
  });

  test('a v1beta1 CronJob review and a core-group kind without group', () => {
    const body = fx.review(fx.cronJob('batch/v1beta1'), { apiVersion: 'admission.k8s.io/v1beta1' });
    assert.equal(parseReview(body).request.kind.version, 'v1beta1');
    const pod = fx.review(fx.pod());
    delete pod['request'].kind.group;
    assert.equal(parseReview(pod).request.kind.group, '');
  });

  test('null fields are treated as absent', () => {
    const body = withRequest((r) => {
      r['object'].spec.template.spec.affinity = null;
      r['object'].metadata.annotations = null;
      r['name'] = null;
      r['subResource'] = null;
      r['kind'].group = null;
    });
    const { request } = parseReview(body);
    assert.deepEqual([request.name, request.subResource, request.kind.group], ['', '', '']);
  });

  test('an unknown kind is accepted with any object shape', () => {
    const body = fx.review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } });
    assert.equal(parseReview(body).request.kind.kind, 'ConfigMap');
  });
});
