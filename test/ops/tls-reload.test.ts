// Serving certificate hot reload, with the files laid out the way the kubelet mounts a Secret:
// tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/, and an update swaps ..data atomically.
//   node --import tsx --test test/ops/tls-reload.test.ts
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileNamespaceSource } from '../../src/namespaces/file-namespace-source.js';
import { readKeyPair } from '../../src/server/tls.js';
import { CertificateReloader } from '../../src/server/tls-reload.js';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import {
  eventually,
  fetchText,
  generateClientCerts,
  NAMESPACES_YAML,
  send,
  startServer,
  type Running,
} from './harness.js';
import { sample } from '../support/prometheus.js';

/** A Secret volume as the kubelet's AtomicWriter maintains it. */
class SecretVolume {
  private generation = 0;
  private current: string | undefined;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  get certFile(): string {
    return join(this.dir, 'tls.crt');
  }

  get keyFile(): string {
    return join(this.dir, 'tls.key');
  }

  /** Writes a new timestamped directory, swaps ..data to it in one rename, removes the old one. */
  publish(files: { cert: Buffer | string; key: Buffer | string }): void {
    const name = `..2026_11_21_05_56_${String(this.generation++).padStart(2, '0')}.000000001`;
    mkdirSync(join(this.dir, name));
    writeFileSync(join(this.dir, name, 'tls.crt'), files.cert);
    writeFileSync(join(this.dir, name, 'tls.key'), files.key);
    symlinkSync(name, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.current === undefined) {
      symlinkSync('..data/tls.crt', this.certFile);
      symlinkSync('..data/tls.key', this.keyFile);
    } else {
      rmSync(join(this.dir, this.current), { recursive: true });
    }
    this.current = name;
  }
}

let work = '';
let namespacesFile = '';
let certsA: ServingCerts;
let certsB: ServingCerts;
let certsC: ServingCerts;
const cleanups: (() => Promise<void> | void)[] = [];

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-tls-reload-test-'));
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
  certsA = generateCerts(join(work, 'a'));
  certsB = generateCerts(join(work, 'b'));
  certsC = generateCerts(join(work, 'c'));
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** A server on the pair in `volume`, reloading from it. */
async function serveFrom(volume: SecretVolume, clientCa?: string): Promise<Running> {
  const pair = readKeyPair(volume.certFile, volume.keyFile);
  const ca = clientCa === undefined ? undefined : Buffer.from(clientCa);
  const server = await startServer(new FileNamespaceSource(namespacesFile), { tls: { cert: pair.cert, key: pair.key, clientCa: ca } });
  const reloader = new CertificateReloader({
    certFile: volume.certFile,
    keyFile: volume.keyFile,
    current: pair,
    clientCa: ca,
    server: server.app.server,
    log: server.logger,
    metrics: server.metrics,
  });
  reloader.start();
  cleanups.push(() => reloader.stop(), () => server.close());
  return server;
}

const scrape = async (server: Running) => (await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`)).text;
const trustBoth = () => [certsA.caPem, certsB.caPem, certsC.caPem];

describe('rotation through a ..data swap', () => {
  it('serves the new certificate to new connections with no failed request', { timeout: 60_000 }, async () => {
    const volume = new SecretVolume(join(work, 'rotate'));
    volume.publish(certsA);
    const server = await serveFrom(volume);

    // Two clients keep sending reviews: one opens a connection per request, one reuses its own.
    const failures: string[] = [];
    const freshSeen: string[] = [];
    let keptAliveCount = 0;
    let stop = false;
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => keepAlive.destroy());
    const loop = async (agent: https.Agent | undefined, seen: (fingerprint: string) => void) => {
      for (let i = 0; !stop; i++) {
        try {
          const res = await send(server.port, '/mutate', { ca: trustBoth(), body: review(deployment(), { uid: `u-${i}` }), ...(agent ? { agent } : {}) });
          if (res.status !== 200 || res.json['response']?.['uid'] !== `u-${i}`) failures.push(`status ${res.status}: ${res.text}`);
          seen(res.peerFingerprint);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const clients = [loop(undefined, (f) => freshSeen.push(f)), loop(keepAlive, () => keptAliveCount++)];

    await eventually('requests before the rotation', () => (freshSeen.length >= 3 && keptAliveCount >= 3 ? true : undefined));
    volume.publish(certsB);
    await eventually('a new connection presenting the new certificate', () =>
      freshSeen.at(-1) === certsB.fingerprint ? true : undefined,
    );
    const afterRotation = { fresh: freshSeen.length, keptAlive: keptAliveCount };
    await eventually('requests after the rotation', () =>
      freshSeen.length >= afterRotation.fresh + 3 && keptAliveCount >= afterRotation.keptAlive + 3 ? true : undefined,
    );
    stop = true;
    await Promise.all(clients);

    assert.deepEqual(failures, []);
    assert.equal(freshSeen[0], certsA.fingerprint);
    const firstNew = freshSeen.indexOf(certsB.fingerprint);
    assert.ok(freshSeen.slice(firstNew).every((f) => f === certsB.fingerprint), 'no new connection sees the old certificate after the swap');
    const direct = await send(server.port, '/healthz', { ca: trustBoth() });
    assert.equal(direct.peerFingerprint, certsB.fingerprint);

    const reloaded = server.lines.filter((l) => l['msg'] === 'reloaded the serving certificate');
    assert.equal(reloaded.length, 1, 'one reload for one swap');
    assert.equal(reloaded[0]!['fingerprint'], certsB.fingerprint);
    assert.equal(reloaded[0]!['previousFingerprint'], certsA.fingerprint);
    const text = await scrape(server);
    assert.equal(sample(text, 'realip_webhook_tls_certificate_reloads_total', { result: 'reloaded' }), 1);
    assert.equal(
      sample(text, 'realip_webhook_tls_certificate_expiry_timestamp_seconds'),
      Date.parse(new X509Certificate(certsB.cert).validTo) / 1000,
    );
  });

  it('keeps the old certificate when the new key does not match, and recovers on a good pair', { timeout: 60_000 }, async () => {
    const volume = new SecretVolume(join(work, 'mismatch'));
    volume.publish(certsA);
    const server = await serveFrom(volume);

    volume.publish({ cert: certsB.cert, key: certsC.key });
    const refused = await eventually('the refusal in the log', () =>
      server.lines.find((l) => l['msg']?.startsWith('serving certificate not reloaded')),
    );
    assert.equal(refused['level'], 50);
    assert.match(refused['err'], /tls\.key is not the private key of the certificate in .*tls\.crt/);
    assert.equal(refused['servingFingerprint'], certsA.fingerprint);
    assert.equal((await send(server.port, '/healthz', { ca: trustBoth() })).peerFingerprint, certsA.fingerprint);

    volume.publish({ cert: 'not a certificate\n', key: certsC.key });
    await eventually('the second refusal', () =>
      server.lines.filter((l) => l['msg']?.startsWith('serving certificate not reloaded')).length === 2 ? true : undefined,
    );
    const second = server.lines.filter((l) => l['msg']?.startsWith('serving certificate not reloaded'))[1]!;
    assert.match(second['err'], /tls\.crt: not a PEM certificate/);
    const res = await send(server.port, '/mutate', { ca: trustBoth(), body: review(deployment()) });
    assert.equal(res.status, 200);
    assert.equal(res.peerFingerprint, certsA.fingerprint);

    volume.publish(certsC);
    await eventually('the good pair in service', async () =>
      (await send(server.port, '/healthz', { ca: trustBoth() })).peerFingerprint === certsC.fingerprint ? true : undefined,
    );
    const text = await scrape(server);
    assert.equal(sample(text, 'realip_webhook_tls_certificate_reloads_total', { result: 'refused' }), 2);
    assert.equal(sample(text, 'realip_webhook_tls_certificate_reloads_total', { result: 'reloaded' }), 1);
  });
});

describe('other layouts and settings', () => {
  it('reloads plain files rewritten in place', { timeout: 60_000 }, async () => {
    const dir = join(work, 'plain');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tls.crt'), certsA.cert);
    writeFileSync(join(dir, 'tls.key'), certsA.key);
    const pair = readKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key'));
    const server = await startServer(new FileNamespaceSource(namespacesFile), { tls: { cert: pair.cert, key: pair.key } });
    const reloader = new CertificateReloader({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      current: pair,
      server: server.app.server,
      log: server.logger,
    });
    reloader.start();
    cleanups.push(() => reloader.stop(), () => server.close());

    writeFileSync(join(dir, 'tls.key'), certsB.key);
    writeFileSync(join(dir, 'tls.crt'), certsB.cert);
    await eventually('the rewritten pair in service', async () =>
      (await send(server.port, '/healthz', { ca: trustBoth() })).peerFingerprint === certsB.fingerprint ? true : undefined,
    );
  });

  it('keeps requiring the client CA after a reload', { timeout: 60_000 }, async () => {
    const clientCerts = generateClientCerts(join(work, 'client'));
    const volume = new SecretVolume(join(work, 'client-ca'));
    volume.publish(certsA);
    const server = await serveFrom(volume, clientCerts.caPem);

    volume.publish(certsB);
    await eventually('the new certificate in service', async () =>
      (await send(server.port, '/healthz', { ca: trustBoth() })).peerFingerprint === certsB.fingerprint ? true : undefined,
    );
    const withCert = await send(server.port, '/mutate', { ca: trustBoth(), client: clientCerts.client, body: review(deployment()) });
    assert.equal(withCert.status, 200, withCert.text);
    assert.equal(withCert.peerFingerprint, certsB.fingerprint);
    const without = await send(server.port, '/mutate', { ca: trustBoth(), body: review(deployment()) });
    assert.equal(without.status, 401, without.text);
  });
});
