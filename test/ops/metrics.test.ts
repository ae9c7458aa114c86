// The Prometheus series on the plain-HTTP metrics port, after a known mix of admissions.
//   node --import tsx --test test/ops/metrics.test.ts
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NamespaceLookup } from '../../src/admission/admit.js';
import { WebhookMetrics } from '../../src/server/metrics.js';
import { FileNamespaceSource } from '../../src/namespaces/file-namespace-source.js';
import type { NamespaceSource } from '../../src/namespaces/namespace-source.js';
import { deployment, review, service } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { fetchText, NAMESPACES_YAML, send, startServer, type Running } from './harness.js';
import { sample } from '../support/prometheus.js';

let work = '';
let certs: ServingCerts;
let namespacesFile = '';
const servers: Running[] = [];

/** Answers every lookup with `answer`; `lastEventAt` as given. */
function stubSource(answer: NamespaceLookup, lastEventAt?: number): NamespaceSource {
  return {
    lookup: async () => answer,
    isReady: () => true,
    size: () => 7,
    start: async () => {},
    stop: async () => {},
    ...(lastEventAt === undefined ? {} : { lastEventAt }),
  };
}

async function start(namespaces: NamespaceSource, failClosed = false): Promise<Running> {
  const server = await startServer(namespaces, { tls: { cert: certs.cert, key: certs.key }, failClosed });
  servers.push(server);
  return server;
}

const scrape = async (server: Running) => {
  const res = await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text;
};

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-metrics-test-'));
  certs = generateCerts(join(work, 'certs'));
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
});

after(async () => {
  for (const server of servers) await server.close();
  rmSync(work, { recursive: true, force: true });
});

describe('metrics after a mix of admissions', () => {
  let server: Running;
  let text = '';
  const post = (body: unknown) => send(server.port, '/mutate', { ca: certs.caPem, body });

  before(async () => {
    server = await start(new FileNamespaceSource(namespacesFile));
    const optedOut = deployment({ annotations: { 'realip.io/inject': 'disabled' } });
    const configMap = review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'demo' } });
    configMap['request']['kind']['group'] = '';
    const answers = [
      await post(review(deployment())), // patched: anti-affinity + TPROXY
      await post(review(deployment())), // patched again (a new object each time)
      await post(review(service('NodePort'))), // patched: external-traffic-policy
      await post(review(service('ClusterIP'))), // unchanged: features tried, nothing to do
      await post(review(optedOut)), // skipped as a whole: opted out by annotation
      await post(configMap), // skipped as a whole, and a kind the webhook does not know
      await post(review(deployment(), { namespace: 'default' })), // skipped: namespace not opted in
      await post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), // 400: no request
    ];
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200, 200, 200, 400],
    );
    text = await scrape(server);
  });

  const admissions = (labels: Record<string, string>) => sample(text, 'realip_webhook_admission_requests_total', labels);

  it('counts admissions by kind, operation and outcome', () => {
    assert.equal(admissions({ kind: 'Deployment', operation: 'CREATE', outcome: 'patched' }), 2);
    assert.equal(admissions({ kind: 'Service', operation: 'CREATE', outcome: 'patched' }), 1);
    assert.equal(admissions({ kind: 'Service', operation: 'CREATE', outcome: 'unchanged' }), 1);
    assert.equal(admissions({ kind: 'Deployment', operation: 'CREATE', outcome: 'skipped' }), 2);
    assert.equal(admissions({ kind: 'Deployment', operation: 'CREATE', outcome: 'unchanged' }), undefined);
  });

  it('labels a kind it does not know as other, so clients cannot mint label values', () => {
    assert.equal(admissions({ kind: 'other', operation: 'CREATE', outcome: 'skipped' }), 1);
    assert.doesNotMatch(text, /kind="ConfigMap"/);
  });

  it('counts mutations by feature, the text before "="', () => {
    assert.equal(sample(text, 'realip_webhook_mutations_total', { feature: 'anti-affinity' }), 2);
    assert.equal(sample(text, 'realip_webhook_mutations_total', { feature: 'istio-interception' }), 2);
    assert.equal(sample(text, 'realip_webhook_mutations_total', { feature: 'external-traffic-policy' }), 1);
  });

  it('times every POST /mutate in a histogram with sub-millisecond buckets', () => {
    assert.equal(sample(text, 'realip_webhook_request_duration_seconds_count'), 8);
    assert.equal(typeof sample(text, 'realip_webhook_request_duration_seconds_bucket', { le: '0.0001' }), 'number');
    assert.equal(typeof sample(text, 'realip_webhook_request_duration_seconds_bucket', { le: '0.00025' }), 'number');
    assert.equal(sample(text, 'realip_webhook_request_duration_seconds_bucket', { le: '+Inf' }), 8);
    assert.ok(sample(text, 'realip_webhook_request_duration_seconds_sum')! > 0);
  });

  it('counts the bad request as rejected with its status', () => {
    assert.equal(sample(text, 'realip_webhook_rejected_requests_total', { status: '400' }), 1);
  });

  it('reports the namespace cache size and the age of its labels', () => {
    assert.equal(sample(text, 'realip_webhook_namespace_cache_size'), 2);
    const age = sample(text, 'realip_webhook_namespace_cache_last_event_age_seconds');
    assert.ok(age !== undefined && Number.isFinite(age) && age >= 0, `age ${age}`);
  });

  it('reports the serving certificate expiry as a unix time', () => {
    const expected = Date.parse(new X509Certificate(certs.cert).validTo) / 1000;
    server.metrics.certificateInUse(new X509Certificate(certs.cert));
    return scrape(server).then((after) => {
      assert.equal(sample(after, 'realip_webhook_tls_certificate_expiry_timestamp_seconds'), expected);
      assert.ok(expected > Date.now() / 1000);
    });
  });

  it("includes Node's default process metrics", () => {
    assert.ok(sample(text, 'process_cpu_user_seconds_total')! >= 0);
    assert.ok(sample(text, 'nodejs_heap_size_used_bytes')! > 0);
    assert.ok(sample(text, 'process_resident_memory_bytes')! > 0);
  });

  it('answers other paths on the metrics port with a JSON 404', async () => {
    const res = await fetchText(`http://127.0.0.1:${server.metricsPort}/`);
    assert.equal(res.status, 404);
    assert.match(JSON.parse(res.text).message, /GET \/metrics/);
  });

  it('serves the Prometheus text format', async () => {
    const res = await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`);
    assert.match(res.contentType, /^text\/plain; version=0\.0\.4/);
  });
});

describe('metrics of failures', () => {
  it('fail-open: outcome error, answered 200', async () => {
    const server = await start(stubSource({ found: false, reason: 'API server unreachable' }));
    const res = await send(server.port, '/mutate', { ca: certs.caPem, body: review(deployment()) });
    assert.equal(res.status, 200);
    const text = await scrape(server);
    assert.equal(sample(text, 'realip_webhook_admission_requests_total', { kind: 'Deployment', outcome: 'error' }), 1);
    assert.equal(sample(text, 'realip_webhook_rejected_requests_total'), undefined);
  });

  it('fail-closed: outcome error and a rejected 500', async () => {
    const server = await start(stubSource({ found: false, reason: 'API server unreachable' }), true);
    const res = await send(server.port, '/mutate', { ca: certs.caPem, body: review(deployment(), { operation: 'CREATE' }) });
    assert.equal(res.status, 500);
    const text = await scrape(server);
    assert.equal(sample(text, 'realip_webhook_admission_requests_total', { kind: 'Deployment', operation: 'CREATE', outcome: 'error' }), 1);
    assert.equal(sample(text, 'realip_webhook_rejected_requests_total', { status: '500' }), 1);
  });

  it('a source that never saw an event reports an infinite age, not a small one', async () => {
    const server = await start(stubSource({ found: true, labels: {} }, 0));
    const text = await scrape(server);
    assert.equal(sample(text, 'realip_webhook_namespace_cache_last_event_age_seconds'), Infinity);
    assert.equal(sample(text, 'realip_webhook_namespace_cache_size'), 7);
  });
});

describe('registries', () => {
  it('each WebhookMetrics has its own registry: two in one process count apart', async () => {
    const source = stubSource({ found: true, labels: {} });
    const a = new WebhookMetrics(source);
    const b = new WebhookMetrics(source);
    a.admission({ kind: 'Pod', operation: 'CREATE', outcome: 'patched', changes: ['istio-interception=TPROXY'] });
    const textA = await a.registry.metrics();
    const textB = await b.registry.metrics();
    assert.equal(sample(textA, 'realip_webhook_admission_requests_total', { kind: 'Pod' }), 1);
    assert.equal(sample(textB, 'realip_webhook_admission_requests_total', { kind: 'Pod' }), undefined);
  });
});
