// The repairer's writes under faults a real API server will not produce on demand, at unit level
// against a small stand-in (discovery, lists, a watch held open, and scripted answers to the
// Service PATCH, its GET and the Event POST): a failing patch is retried and counted, a patch
// whose resourceVersion test failed (422) is dropped once a GET shows the Service changed, a
// refused one is retried, and an Event that exists already (409) is neither counted nor retried.
// The real thing runs in test/e2e/repair.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Repairer, type RepairOutcome } from '../../src/repair/repairer.js';
import * as fx from '../fixtures/objects.js';
import { eventually } from '../ops/harness.js';

interface Script {
  /** Status of each PATCH of the Service in turn; the last one repeats. */
  patch: number[];
  /** resourceVersion a GET of the Service answers. */
  currentResourceVersion: string;
  /** Status of each Event POST in turn; the last one repeats. */
  event: number[];
}

const meta = { namespace: 'demo', creationTimestamp: '2026-12-06T10:00:05Z' };
const SERVICE = { ...fx.service('LoadBalancer'), metadata: { name: 'lb', uid: 'svc-uid', resourceVersion: '7', ...meta } };
const DEPLOYMENT = { ...fx.deployment(), metadata: { name: 'web', uid: 'deploy-uid', resourceVersion: '8', ...meta } };

function standIn(script: Script) {
  const seen: string[] = [];
  const watches = new Set<http.ServerResponse>();
  const next = (list: number[]) => (list.length > 1 ? list.shift()! : list[0]!);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    seen.push(`${req.method} ${url.pathname}`);
    req.resume();
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      watches.add(res);
      return;
    }
    const resources: Record<string, string[]> = { '/api/v1': ['services', 'events'], '/apis/apps/v1': ['deployments', 'statefulsets', 'replicasets', 'daemonsets'] };
    if (req.method === 'GET' && resources[url.pathname]) return json(200, { resources: resources[url.pathname]!.map((name) => ({ name })) });
    if (req.method === 'GET' && url.pathname === '/api/v1/services') return json(200, { metadata: { resourceVersion: '10' }, items: [SERVICE] });
    if (req.method === 'GET' && url.pathname === '/apis/apps/v1/deployments') return json(200, { metadata: { resourceVersion: '10' }, items: [DEPLOYMENT] });
    if (req.method === 'GET' && /^\/apis\/apps\/v1\/\w+$/.test(url.pathname)) return json(200, { metadata: { resourceVersion: '10' }, items: [] });
    const servicePath = '/api/v1/namespaces/demo/services/lb';
    if (req.method === 'GET' && url.pathname === servicePath) return json(200, { metadata: { resourceVersion: script.currentResourceVersion } });
    if (req.method === 'PATCH' && url.pathname === servicePath) {
      const status = next(script.patch);
      return json(status, status === 200 ? SERVICE : { kind: 'Status', code: status, message: 'the server rejected our request due to an error in our request' });
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/namespaces/demo/events') {
      const status = next(script.event);
      return json(status, status === 201 ? {} : { kind: 'Status', code: status, reason: status === 409 ? 'AlreadyExists' : 'InternalError', message: 'no' });
    }
    json(404, { kind: 'Status', code: 404, message: `no ${url.pathname}` });
  });
  return {
    seen,
    count: (what: string) => seen.filter((s) => s === what).length,
    async start(): Promise<KubeConfig> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: 'u', token: 't' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      return kc;
    },
    async stop() {
      for (const w of watches) w.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const r of running.reverse()) await r.stop();
  running = [];
});

async function repairWith(script: Script) {
  const api = standIn(script);
  const kubeConfig = await api.start();
  running.push(api);
  const outcomes: string[] = [];
  const repairer = new Repairer(kubeConfig, pino({ level: 'silent' }), {
    labelPrefix: 'realip.io',
    namespaces: { cached: () => ({ metadata: { name: 'demo', labels: { 'realip.io/inject': 'enabled' } }, labelsSetAt: Date.parse('2026-12-06T10:00:00Z') }) },
    reporter: { repair: (kind: string, outcome: RepairOutcome) => outcomes.push(`${kind} ${outcome}`), trackWatch: () => {} },
    instance: 'test',
    retryDelaysMs: [20, 20, 20],
  });
  running.push(repairer);
  await repairer.start();
  return { api, outcomes };
}

const PATCH = 'PATCH /api/v1/namespaces/demo/services/lb';
const GET = 'GET /api/v1/namespaces/demo/services/lb';
const EVENT = 'POST /api/v1/namespaces/demo/events';

describe('repairer writes under faults', () => {
  test('a patch that fails is retried, each failure counted, until it succeeds', async () => {
    const { api, outcomes } = await repairWith({ patch: [500, 503, 200], currentResourceVersion: '7', event: [201] });
    await eventually('the Service repaired', () => (outcomes.includes('Service repaired') ? true : undefined));
    assert.equal(api.count(PATCH), 3);
    assert.deepEqual(outcomes.filter((o) => o.startsWith('Service')), ['Service failed', 'Service failed', 'Service repaired']);
  });

  test('a 422 with the Service changed since (the other replica patched it) is dropped: no retry, no count', async () => {
    const { api, outcomes } = await repairWith({ patch: [422], currentResourceVersion: '9', event: [409] });
    await eventually('the GET that tells', () => (api.count(GET) === 1 ? true : undefined));
    // The Deployment's Event exists already: judged after the Service, written after it, in order.
    await eventually('the Deployment Event attempt', () => (api.count(EVENT) === 1 ? true : undefined));
    assert.equal(api.count(PATCH), 1);
    assert.deepEqual(outcomes, []);
  });

  test('a 422 on an unchanged Service is a refusal: counted and retried, then given up', async () => {
    const { api, outcomes } = await repairWith({ patch: [422], currentResourceVersion: '7', event: [201] });
    await eventually('four attempts', () => (outcomes.filter((o) => o === 'Service failed').length === 4 ? true : undefined));
    assert.equal(api.count(PATCH), 4, 'the first attempt and three retries');
    assert.ok(outcomes.includes('Deployment reported'));
  });

  test('an Event create that fails is retried; the workload is reported once', async () => {
    const { api, outcomes } = await repairWith({ patch: [200], currentResourceVersion: '7', event: [201, 500, 201] });
    await eventually('the Deployment reported', () => (outcomes.includes('Deployment reported') ? true : undefined));
    // The Service's own Event took the first 201; the Deployment's failed once, then went through.
    assert.equal(api.count(EVENT), 3);
    assert.deepEqual(outcomes.filter((o) => o.startsWith('Deployment')), ['Deployment failed', 'Deployment reported']);
  });
});
