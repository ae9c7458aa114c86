// The real HTTPS server from buildServer(), driven over TLS with supertest: status codes, JSON
// bodies, the patches as the API server would apply them, and the log line of each case.
//   node --import tsx --test test/http/server.test.ts
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { NamespaceLookup } from '../../src/admission/admit.js';
import { FileNamespaceSource } from '../../src/namespaces/file-namespace-source.js';
import type { NamespaceSource } from '../../src/namespaces/namespace-source.js';
import { BODY_LIMIT_BYTES, buildServer } from '../../src/server/webhook-server.js';
import { deployment, generateNamePod, review, service } from '../fixtures/objects.js';
import { generateCerts } from '../support/certs.js';
import type { Json } from '../support/json.js';
import { captureLogs } from '../support/logs.js';
import { namespacesYaml } from '../support/namespaces.js';
import { applyStrict, decodePatch } from '../support/patch.js';

const TPROXY = 'sidecar.istio.io/interceptionMode';

const NAMESPACES_YAML = namespacesYaml({
  demo: { 'realip.io/inject': 'enabled' },
  'demo-restricted': { 'realip.io/inject': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' },
  default: {},
  'opted-out': { 'realip.io/inject': 'disabled' },
});

/** A NamespaceSource written for the tests: answers as told. */
class StubNamespaceSource implements NamespaceSource {
  lookups: string[] = [];
  constructor(
    private readonly answer: (name: string) => Promise<NamespaceLookup>,
    private readonly ready = true,
  ) {}
  lookup(name: string): Promise<NamespaceLookup> {
    this.lookups.push(name);
    return this.answer(name);
  }
  isReady(): boolean {
    return this.ready;
  }
  size(): number {
    return 0;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

const unreachable = () =>
  new StubNamespaceSource(async () => ({ found: false, reason: 'API server unreachable: connect ECONNREFUSED' }));

interface Running {
  app: ReturnType<typeof buildServer>;
  /** Every log line, parsed, in order. */
  lines: Json[];
  /** Every log line as written. */
  raw: string[];
  /** POST /mutate, with `body` as JSON unless it is undefined. */
  post(body?: unknown): request.Test;
  get(path: string): request.Test;
  port: number;
}

let work = '';
let caPem = '';
let tlsPair: { cert: Buffer; key: Buffer };
let namespacesFile = '';
const running: Running[] = [];

async function start(namespaces: NamespaceSource, failClosed = false): Promise<Running> {
  const { logger, lines, raw } = captureLogs();
  const app = buildServer({ tls: tlsPair, namespaces, admit: { labelPrefix: 'realip.io', failClosed }, logger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  const handle: Running = {
    app,
    lines,
    raw,
    port,
    post: (body) => {
      const req = request(app.server).post('/mutate').ca(caPem);
      return body === undefined ? req : req.send(body as object);
    },
    get: (path) => request(app.server).get(path).ca(caPem),
  };
  running.push(handle);
  return handle;
}

/** The log lines written while `fn` ran. */
async function logged<T>(server: Running, fn: () => Promise<T>): Promise<{ result: T; lines: Json[]; raw: string[] }> {
  const from = server.lines.length;
  const result = await fn();
  return { result, lines: server.lines.slice(from), raw: server.raw.slice(from) };
}

function patched(object: Json, response: Json): Json {
  assert.equal(response['patchType'], 'JSONPatch');
  assert.equal(typeof response['patch'], 'string');
  return applyStrict(object, decodePatch(response['patch'] as string));
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-server-test-'));
  const certs = generateCerts(join(work, 'certs'));
  caPem = certs.caPem;
  assert.equal(Buffer.from(certs.caBundle, 'base64').toString('utf8'), caPem, 'generate.sh prints the CA bundle');
  tlsPair = { cert: certs.cert, key: certs.key };
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
});

after(async () => {
  for (const server of running) await server.app.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('POST /mutate with namespaces from a file', () => {
  let server: Running;
  before(async () => {
    server = await start(new FileNamespaceSource(namespacesFile));
  });

  it('patches a defaulted Deployment with preferred anti-affinity and the TPROXY annotation', async () => {
    const object = deployment();
    const uid = '0f6e3b1a-1111-4222-8333-444455556666';
    const { result: res, lines, raw } = await logged(server, () => server.post(review(object, { uid })));
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    const body = res.body as Json;
    assert.equal(body['apiVersion'], 'admission.k8s.io/v1');
    assert.equal(body['kind'], 'AdmissionReview');
    const response = body['response'] as Json;
    assert.equal(response['uid'], uid);
    assert.equal(response['allowed'], true);

    const result = patched(object, response);
    const template = result['spec']['template'];
    assert.equal(template['metadata']['annotations'][TPROXY], 'TPROXY');
    assert.deepEqual(template['spec']['affinity']['podAntiAffinity'], {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: { labelSelector: { matchLabels: { app: 'source-ip-app' } }, topologyKey: 'kubernetes.io/hostname' },
        },
      ],
    });
    // Nothing else moved.
    assert.deepEqual(template['spec']['containers'], object['spec']['template']['spec']['containers']);

    const mutations = (response['auditAnnotations'] as Record<string, string>)['mutations'] ?? '';
    assert.match(mutations, /anti-affinity/);
    assert.match(mutations, /istio-interception=TPROXY/);
    const warnings = response['warnings'] as string[];
    assert.ok(Array.isArray(warnings) && warnings.length >= 2, `warnings: ${JSON.stringify(warnings)}`);
    assert.ok(warnings.some((w) => w.includes('anti-affinity')));
    assert.ok(warnings.some((w) => w.includes('TPROXY')));

    // The one admission log line: who, what, how long; never the object.
    const admission = lines.filter((l) => l['msg'] === 'admission');
    assert.equal(admission.length, 1, `log lines: ${raw.join('\n')}`);
    const line = admission[0]!;
    assert.equal(line['level'], 30);
    assert.equal(line['uid'], uid);
    assert.equal(line['kind'], 'Deployment');
    assert.equal(line['namespace'], 'demo');
    assert.equal(line['name'], 'source-ip-app');
    assert.equal(line['operation'], 'CREATE');
    assert.equal(line['outcome'], 'patched');
    assert.ok(Array.isArray(line['changes']));
    assert.ok((line['changes'] as string[]).includes('istio-interception=TPROXY'));
    assert.ok((line['changes'] as string[]).some((c) => c.startsWith('anti-affinity=')));
    assert.equal(typeof line['durationMs'], 'number');
    assert.ok(line['durationMs'] >= 0);
    for (const text of raw) {
      assert.doesNotMatch(text, /containers|echoserver|registry\.k8s\.io/, 'no object content at info level');
    }
  });

  it('answers a v1beta1 review with apiVersion admission.k8s.io/v1beta1', async () => {
    const object = deployment();
    const res = await server.post(review(object, { apiVersion: 'admission.k8s.io/v1beta1', uid: 'beta-1' }));
    assert.equal(res.status, 200);
    assert.equal(res.body.apiVersion, 'admission.k8s.io/v1beta1');
    assert.equal(res.body.kind, 'AdmissionReview');
    assert.equal(res.body.response.uid, 'beta-1');
    assert.equal(patched(object, res.body.response)['spec']['template']['metadata']['annotations'][TPROXY], 'TPROXY');
  });

  it('sets externalTrafficPolicy Local on a NodePort Service defaulted to Cluster', async () => {
    const object = service('NodePort');
    assert.equal(object['spec']['externalTrafficPolicy'], 'Cluster');
    const { result: res, lines } = await logged(server, () => server.post(review(object)));
    assert.equal(res.status, 200);
    const result = patched(object, res.body.response);
    assert.equal(result['spec']['externalTrafficPolicy'], 'Local');
    assert.equal(result['spec']['healthCheckNodePort'], undefined, 'healthCheckNodePort is left to the API server');
    assert.deepEqual(result['spec']['ports'], object['spec']['ports']);
    const line = lines.find((l) => l['msg'] === 'admission');
    assert.equal(line?.['kind'], 'Service');
    assert.equal(line?.['outcome'], 'patched');
  });

  it('leaves a ClusterIP Service alone: no patch and no patchType fields', async () => {
    const res = await server.post(review(service('ClusterIP'), { uid: 'cip' }));
    assert.equal(res.status, 200);
    const response = res.body.response as Json;
    assert.equal(response['uid'], 'cip');
    assert.equal(response['allowed'], true);
    assert.ok(!('patch' in response), `no patch: ${JSON.stringify(response)}`);
    assert.ok(!('patchType' in response), `no patchType: ${JSON.stringify(response)}`);
  });

  it('uses request.namespace for a generateName Pod whose metadata.namespace is empty', async () => {
    const object = generateNamePod();
    assert.equal(object['metadata']['namespace'], undefined);
    const body = review(object, { namespace: 'demo' });
    assert.equal(body['request']['name'], '');
    const { result: res, lines } = await logged(server, () => server.post(body));
    assert.equal(res.status, 200);
    const result = patched(object, res.body.response);
    assert.equal(result['metadata']['annotations'][TPROXY], 'TPROXY');
    const line = lines.find((l) => l['msg'] === 'admission');
    assert.equal(line?.['namespace'], 'demo');
    assert.equal(line?.['kind'], 'Pod');
  });

  it('skips TPROXY with a warning in a namespace enforcing pod-security restricted', async () => {
    const object = deployment();
    object['metadata']['namespace'] = 'demo-restricted';
    const res = await server.post(review(object, { namespace: 'demo-restricted' }));
    assert.equal(res.status, 200);
    const result = patched(object, res.body.response);
    assert.equal(result['spec']['template']['metadata']['annotations']?.[TPROXY], undefined);
    assert.ok(result['spec']['template']['spec']['affinity']['podAntiAffinity'], 'anti-affinity still added');
    const warnings = res.body.response.warnings as string[];
    assert.ok(warnings.some((w) => /TPROXY/.test(w) && /restricted/.test(w)), JSON.stringify(warnings));
  });

  it('admits a kind it does not handle (ConfigMap) unchanged', async () => {
    const body = review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'demo' }, data: { a: 'b' } });
    body['request']['kind']['group'] = '';
    body['request']['resource']['group'] = '';
    const { result: res, lines } = await logged(server, () => server.post(body));
    assert.equal(res.status, 200);
    assert.equal(res.body.response.allowed, true);
    assert.ok(!('patch' in res.body.response));
    assert.ok(!('patchType' in res.body.response));
    const line = lines.find((l) => l['msg'] === 'admission');
    assert.equal(line?.['outcome'], 'unchanged');
    assert.ok((line?.['skips'] as string[]).some((s) => s.includes('ConfigMap')), JSON.stringify(line));
  });

  for (const namespace of ['default', 'opted-out']) {
    it(`does not patch in a namespace that is not opted in (${namespace})`, async () => {
      const object = deployment();
      object['metadata']['namespace'] = namespace;
      const { result: res, lines } = await logged(server, () => server.post(review(object, { namespace })));
      assert.equal(res.status, 200);
      assert.equal(res.body.response.allowed, true);
      assert.ok(!('patch' in res.body.response), JSON.stringify(res.body.response));
      const line = lines.find((l) => l['msg'] === 'admission');
      assert.equal(line?.['outcome'], 'unchanged');
      assert.equal(line?.['namespace'], namespace);
      assert.ok((line?.['skips'] as string[]).length > 0);
    });
  }

  describe('bad input: 4xx with a JSON {error, message} and a warn log line', () => {
    const valid = () => review(deployment());
    const cases: {
      name: string;
      send: (s: Running) => request.Test;
      status: number;
      message: RegExp;
      todo?: string;
    }[] = [
      {
        name: 'not JSON',
        send: (s) => s.post().set('content-type', 'application/json').send('{"apiVersion": nope'),
        status: 400,
        message: /not valid JSON/i,
      },
      {
        name: 'a JSON array',
        send: (s) => s.post([valid()]),
        status: 400,
        message: /JSON object.*got array/,
      },
      {
        name: 'not an AdmissionReview (kind Foo)',
        send: (s) => s.post({ ...valid(), kind: 'Foo' }),
        status: 400,
        message: /"Foo".*AdmissionReview.*admission\.k8s\.io\/v1".*admission\.k8s\.io\/v1beta1/,
      },
      {
        name: 'an unknown review version',
        send: (s) => s.post({ ...valid(), apiVersion: 'admission.k8s.io/v2' }),
        status: 400,
        message: /admission\.k8s\.io\/v2.*allowed/,
      },
      {
        name: 'no request',
        send: (s) => {
          const body = valid();
          delete body['request'];
          return s.post(body);
        },
        status: 400,
        message: /request must be an object/,
      },
      {
        name: 'no uid',
        send: (s) => {
          const body = valid();
          delete body['request']['uid'];
          return s.post(body);
        },
        status: 400,
        message: /request\.uid/,
      },
      {
        name: 'an ill-typed object (spec: "x")',
        send: (s) => {
          const body = valid();
          body['request']['object']['spec'] = 'x';
          return s.post(body);
        },
        status: 400,
        message: /request\.object\.spec must be an object, got string/,
      },
      {
        name: 'UPDATE without oldObject',
        send: (s) => s.post(review(deployment(), { operation: 'UPDATE' })),
        status: 400,
        message: /request\.oldObject is required for UPDATE/,
      },
      {
        name: 'a body over the limit',
        send: (s) => {
          const padding = 'x'.repeat(9 * 1024 * 1024);
          const body = JSON.stringify(review(deployment({ annotations: { padding } })));
          assert.ok(body.length > BODY_LIMIT_BYTES);
          return s.post().set('content-type', 'application/json').send(body);
        },
        status: 413,
        message: new RegExp(`larger than the limit of ${BODY_LIMIT_BYTES} bytes`),
      },
      {
        name: 'content type text/plain',
        send: (s) => s.post().set('content-type', 'text/plain').send(JSON.stringify(valid())),
        status: 415,
        message: /text\/plain.*allowed: application\/json/,
      },
    ];

    for (const c of cases) {
      it(`${c.name} → ${c.status}`, c.todo ? { todo: c.todo } : {}, async () => {
        const { result: res, lines, raw } = await logged(server, () => c.send(server));
        assert.equal(res.status, c.status, `body: ${res.text}`);
        assert.match(res.headers['content-type'] ?? '', /^application\/json/);
        const body = res.body as Json;
        assert.equal(typeof body['error'], 'string');
        assert.notEqual(body['error'], '');
        assert.notEqual(body['error'], 'InternalError', 'a client error is not called internal');
        assert.match(body['message'] as string, c.message);
        const warns = lines.filter((l) => l['level'] === 40);
        assert.equal(warns.length, 1, `one warn line, got: ${raw.join('\n')}`);
        assert.ok(!lines.some((l) => l['msg'] === 'admission'), 'no admission line for bad input');
        assert.ok(raw.every((r) => r.length < 4096), 'the log line does not carry the body');
      });
    }

    it('still answers GET /healthz after all of them', async () => {
      const res = await server.get('/healthz');
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'ok');
    });
  });

  it('GET /healthz → 200', async () => {
    const res = await server.get('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  it('GET /readyz → 200 with a ready source', async () => {
    const res = await server.get('/readyz');
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ready');
  });

  it('an unknown route → 404 JSON listing the routes', async () => {
    const res = await server.get('/nope');
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'NotFound');
    assert.match(res.body.message, /GET \/nope/);
    assert.match(res.body.message, /POST \/mutate/);
    assert.match(res.body.message, /GET \/healthz/);
    assert.match(res.body.message, /GET \/readyz/);
  });

  it('GET /mutate → 404, not a crash', async () => {
    const res = await server.get('/mutate');
    assert.equal(res.status, 404);
    assert.match(res.body.message, /POST \/mutate/);
  });
});

describe('when namespace labels are unavailable', () => {
  it('fails open: 200 allowed, no patch, one warning naming the namespace', async () => {
    const source = unreachable();
    const server = await start(source);
    const { result: res, lines } = await logged(server, () => server.post(review(deployment(), { uid: 'open-1' })));
    assert.deepEqual(source.lookups, ['demo']);
    assert.equal(res.status, 200);
    const response = res.body.response as Json;
    assert.equal(response['uid'], 'open-1');
    assert.equal(response['allowed'], true);
    assert.ok(!('patch' in response));
    assert.ok(!('patchType' in response));
    const warnings = response['warnings'] as string[];
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!, /demo/);
    assert.match(warnings[0]!, /unchanged/);
    const line = lines.find((l) => l['msg'] === 'admission');
    assert.equal(line?.['outcome'], 'error');
    assert.equal(line?.['level'], 50);
    assert.match(String(line?.['error']), /unreachable/);
  });

  it('fails closed when configured: 500 JSON error', async () => {
    const server = await start(unreachable(), true);
    const { result: res, lines } = await logged(server, () => server.post(review(deployment(), { uid: 'closed-1' })));
    assert.equal(res.status, 500);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(res.body.error, 'MutationFailed');
    assert.match(res.body.message, /demo/);
    assert.equal(res.body.response, undefined, 'no AdmissionReview: the failurePolicy decides');
    const line = lines.find((l) => l['level'] === 50);
    assert.equal(line?.['uid'], 'closed-1');
  });

  it('a source whose lookup throws is treated the same: fail open', async () => {
    const server = await start(
      new StubNamespaceSource(async () => {
        throw new Error('informer exploded');
      }),
    );
    const res = await server.post(review(deployment(), { uid: 'throws-1' }));
    assert.equal(res.status, 200);
    assert.equal(res.body.response.uid, 'throws-1');
    assert.equal(res.body.response.allowed, true);
    assert.ok(!('patch' in res.body.response));
    const warnings = res.body.response.warnings as string[];
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /demo/);
    // And the server keeps going.
    assert.equal((await server.get('/healthz')).status, 200);
  });

  it('a source whose lookup throws under fail-closed: 500', async () => {
    const server = await start(
      new StubNamespaceSource(async () => {
        throw new Error('informer exploded');
      }),
      true,
    );
    const res = await server.post(review(deployment()));
    assert.equal(res.status, 500);
    assert.equal(res.body.error, 'MutationFailed');
  });

  it('GET /readyz → 503 until the source is ready', async () => {
    const server = await start(new StubNamespaceSource(async () => ({ found: true, labels: {} }), false));
    const res = await server.get('/readyz');
    assert.equal(res.status, 503);
    assert.equal(res.body.status, 'not ready');
    assert.equal((await server.get('/healthz')).status, 200, 'alive while not ready');
  });
});

describe('transport', () => {
  let server: Running;
  before(async () => {
    server = await start(new FileNamespaceSource(namespacesFile));
  });

  it('speaks HTTPS only: a plain-HTTP request gets no normal answer', async () => {
    const outcome = await new Promise<{ status?: number; error?: string }>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: server.port, path: '/healthz', timeout: 5000 }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0 });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    });
    assert.ok(outcome.status === undefined || outcome.status >= 400, `plain HTTP answered: ${JSON.stringify(outcome)}`);
  });

  it('negotiates TLS 1.2 with a client that offers nothing newer', async () => {
    const protocol = await new Promise<string | null>((resolve, reject) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port: server.port, ca: caPem, maxVersion: 'TLSv1.2' },
        () => {
          const p = socket.getProtocol();
          socket.end();
          resolve(p);
        },
      );
      socket.on('error', reject);
    });
    assert.equal(protocol, 'TLSv1.2');
  });

  it('keeps idle connections longer than the API server (90 s)', () => {
    assert.ok(server.app.server.keepAliveTimeout > 90_000, `keepAliveTimeout ${server.app.server.keepAliveTimeout}`);
  });
});
