// --client-ca reloads without a restart: after the file changes, new connections need a client
// certificate from the new CA; a file that is not a CA keeps the old one; a serving certificate
// rotated afterwards keeps the CA in service.
//   node --import tsx --test test/ops/client-ca-reload.test.ts
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientCaReloader } from '../../src/server/client-certificate.js';
import { FileNamespaceSource } from '../../src/namespaces/file-namespace-source.js';
import { readCaBundle, readKeyPair, secureContextOptions } from '../../src/server/tls.js';
import { CertificateReloader } from '../../src/server/tls-reload.js';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { eventually, generateClientCerts, NAMESPACES_YAML, send, startServer, type ClientCredentials, type Running } from './harness.js';

let work = '';
let namespacesFile = '';
let serving: ServingCerts;
let servingNext: ServingCerts;
let first: { caPem: string; caFile: string; client: ClientCredentials };
let second: { caPem: string; caFile: string; client: ClientCredentials };
const cleanups: (() => Promise<void> | void)[] = [];

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-client-ca-reload-test-'));
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
  serving = generateCerts(join(work, 'serving'));
  servingNext = generateCerts(join(work, 'serving-next'));
  first = generateClientCerts(join(work, 'first'));
  second = generateClientCerts(join(work, 'second'));
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** Replaces `file` in one rename, as a tool that writes atomically does. */
function replace(file: string, content: string): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

/** A server requiring client certificates from the CA in `caFile`, both reloaders running as serve wires them. */
async function serve(dir: string): Promise<{ server: Running; caFile: string; certFile: string; keyFile: string }> {
  mkdirSync(dir);
  const caFile = join(dir, 'client-ca.crt');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  copyFileSync(first.caFile, caFile);
  copyFileSync(serving.certFile, certFile);
  copyFileSync(serving.keyFile, keyFile);
  const pair = readKeyPair(certFile, keyFile);
  const clientCa = readCaBundle(caFile);
  const server = await startServer(new FileNamespaceSource(namespacesFile), { tls: { cert: pair.cert, key: pair.key, clientCa } });
  const caReloader = new ClientCaReloader({ caFile, current: clientCa, context: secureContextOptions(pair), server: server.app.server, log: server.logger, debounceMs: 20 });
  const reloader = new CertificateReloader({ certFile, keyFile, current: pair, clientCa, server: caReloader.server, log: server.logger, debounceMs: 20 });
  caReloader.start();
  reloader.start();
  cleanups.push(() => caReloader.stop(), () => reloader.stop(), () => server.close());
  return { server, caFile, certFile, keyFile };
}

const post = (server: Running, client: ClientCredentials, ca = [serving.caPem, servingNext.caPem]) =>
  send(server.port, '/mutate', { ca, client, body: review(deployment()) }).then((res) => res.status);

describe('--client-ca reload', () => {
  it('requires certificates from the new CA once the file changes, with no restart', async () => {
    const { server, caFile } = await serve(join(work, 'rotate'));
    assert.equal(await post(server, first.client), 200);
    assert.equal(await post(server, second.client), 401);
    replace(caFile, second.caPem);
    await eventually('a client of the new CA admitted', async () => ((await post(server, second.client)) === 200 ? true : undefined));
    assert.equal(await post(server, first.client), 401, 'the old CA no longer admits');
    assert.ok(server.lines.some((l) => l['msg'] === 'reloaded the client CA (--client-ca)'));
  });

  it('keeps the CA in service when the new file is not a CA, and says so', async () => {
    const { server, caFile } = await serve(join(work, 'broken'));
    replace(caFile, 'not a certificate\n');
    await eventually('the refusal logged', () => (server.lines.some((l) => /^client CA not reloaded/.test(String(l['msg']))) ? true : undefined));
    assert.equal(await post(server, first.client), 200);
    assert.equal(await post(server, second.client), 401);
  });

  it('keeps the reloaded CA when the serving certificate rotates afterwards', async () => {
    const { server, caFile, certFile, keyFile } = await serve(join(work, 'both'));
    replace(caFile, second.caPem);
    await eventually('the new CA in service', async () => ((await post(server, second.client)) === 200 ? true : undefined));
    copyFileSync(servingNext.keyFile, `${keyFile}.tmp`);
    copyFileSync(servingNext.certFile, `${certFile}.tmp`);
    renameSync(`${keyFile}.tmp`, keyFile);
    renameSync(`${certFile}.tmp`, certFile);
    await eventually('the new serving certificate', async () => {
      const res = await send(server.port, '/mutate', { ca: [serving.caPem, servingNext.caPem], client: second.client, body: review(deployment()) });
      return res.peerFingerprint === servingNext.fingerprint ? res.status : undefined;
    }).then((status) => assert.equal(status, 200));
    assert.equal(await post(server, first.client), 401, 'the serving reload did not bring the old CA back');
  });
});
