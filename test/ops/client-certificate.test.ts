// --client-ca: POST /mutate needs a client certificate from that CA; without the flag, none is needed.
//   node --import tsx --test test/ops/client-certificate.test.ts
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileNamespaceSource } from '../../src/namespaces/file-namespace-source.js';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import {
  fetchText,
  generateClientCerts,
  NAMESPACES_YAML,
  send,
  startServer,
  type ClientCredentials,
  type Running,
} from './harness.js';
import { sample } from '../support/prometheus.js';

let work = '';
let certs: ServingCerts;
let namespacesFile = '';
let trusted: { caPem: string; client: ClientCredentials };
let untrusted: { caPem: string; client: ClientCredentials };
const servers: Running[] = [];

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-client-cert-test-'));
  certs = generateCerts(join(work, 'certs'));
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
  trusted = generateClientCerts(join(work, 'trusted'));
  untrusted = generateClientCerts(join(work, 'untrusted'));
});

after(async () => {
  for (const server of servers) await server.close();
  rmSync(work, { recursive: true, force: true });
});

async function start(clientCa?: string): Promise<Running> {
  const server = await startServer(new FileNamespaceSource(namespacesFile), {
    tls: { cert: certs.cert, key: certs.key, ...(clientCa ? { clientCa } : {}) },
  });
  servers.push(server);
  return server;
}

describe('without --client-ca', () => {
  it('admits a client that presents no certificate', async () => {
    const server = await start();
    const res = await send(server.port, '/mutate', { ca: certs.caPem, body: review(deployment(), { uid: 'no-ca' }) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json['response']['uid'], 'no-ca');
  });
});

describe('with --client-ca', () => {
  let server: Running;
  before(async () => {
    server = await start(trusted.caPem);
  });

  it('admits a client whose certificate the CA signed', async () => {
    const res = await send(server.port, '/mutate', { ca: certs.caPem, client: trusted.client, body: review(deployment(), { uid: 'signed' }) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json['response']['uid'], 'signed');
    assert.equal(res.json['response']['patchType'], 'JSONPatch');
  });

  it('refuses a client without a certificate: 401 JSON and a warn line, no admission', async () => {
    const from = server.lines.length;
    const res = await send(server.port, '/mutate', { ca: certs.caPem, body: review(deployment()) });
    assert.equal(res.status, 401);
    assert.equal(res.json['error'], 'ClientCertificateRequired');
    assert.match(res.json['message'], /--client-ca/);
    assert.match(res.json['message'], /no certificate was presented/);
    assert.equal(res.json['response'], undefined);
    const lines = server.lines.slice(from);
    const warn = lines.find((l) => l['level'] === 40);
    assert.equal(warn?.['msg'], 'refused a request without a valid client certificate');
    assert.ok(!lines.some((l) => l['msg'] === 'admission'));
  });

  it('refuses a certificate signed by another CA', async () => {
    const res = await send(server.port, '/mutate', { ca: certs.caPem, client: untrusted.client, body: review(deployment()) });
    assert.equal(res.status, 401);
    assert.equal(res.json['error'], 'ClientCertificateRequired');
    assert.match(res.json['message'], /not accepted/);
  });

  it('still answers the probes without a certificate (the kubelet presents none)', async () => {
    assert.equal((await send(server.port, '/healthz', { ca: certs.caPem })).status, 200);
    assert.equal((await send(server.port, '/readyz', { ca: certs.caPem })).status, 200);
  });

  it('counts the refusals as rejected 401s', async () => {
    const text = (await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`)).text;
    assert.equal(sample(text, 'realip_webhook_rejected_requests_total', { status: '401' }), 2);
  });
});
