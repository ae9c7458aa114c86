// `realip-webhook serve` in a child process: graceful shutdown with a request in flight, and the
// start-up checks of the certificate files and ports.
//   node --import tsx --test test/ops/serve.test.ts
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { CLI_SOURCE, noClusterEnv, runCli, spawnServe, type ServeProcess } from '../support/cli.js';
import type { Json } from '../support/json.js';
import { freePort } from '../support/net.js';
import { REPO_ROOT } from '../support/repo.js';
import { eventually, fetchText, NAMESPACES_YAML, send } from './harness.js';

let work = '';
let home = '';
let namespacesFile = '';
let certs: ServingCerts;
let otherCerts: ServingCerts;
const children: ChildProcess[] = [];

const tlsFlags = (c: ServingCerts = certs) => ['--tls-cert', c.certFile, '--tls-key', c.keyFile];

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-serve-test-'));
  home = join(work, 'home');
  mkdirSync(home);
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
  certs = generateCerts(join(work, 'certs'));
  otherCerts = generateCerts(join(work, 'other'));
});

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** serve with the test certificate and namespaces, once it watches the certificate (its last start-up step). */
async function startServe(): Promise<ServeProcess> {
  const served = await spawnServe(home, [...tlsFlags(), '--namespaces-file', namespacesFile]);
  children.push(served.proc);
  await served.logLine((l) => l['msg'] === 'watching the serving certificate for changes');
  return served;
}

/** A POST /mutate whose body is sent in two parts: the request stays in flight until `finish()`. */
async function slowReview(port: number, uid: string) {
  const body = JSON.stringify(review(deployment(), { uid }));
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.caPem });
  await once(socket, 'secureConnect');
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  const closed = once(socket, 'close');
  const half = Math.floor(body.length / 2);
  socket.write(`POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
  socket.write(body.slice(0, half));
  return {
    /** Sends the rest and resolves with the response once the server closes the connection. */
    finish: async () => {
      socket.write(body.slice(half));
      await closed;
      const [head = '', payload = ''] = received.split('\r\n\r\n');
      return { status: Number(head.split(' ')[1]), head, json: JSON.parse(payload) as Json };
    },
  };
}

describe('graceful shutdown', () => {
  it('SIGTERM: unready at once, in-flight request answered, new connections refused, exit 0', { timeout: 60_000 }, async () => {
    const served = await startServe();
    assert.equal((await send(served.port, '/readyz', { ca: certs.caPem })).status, 200);
    const inFlight = await slowReview(served.port, 'in-flight');

    assert.ok(served.proc.kill('SIGTERM'));
    const shuttingDown = await served.logLine((l) => l['msg'] === 'shutting down');
    assert.equal(shuttingDown['signal'], 'SIGTERM');

    // The drain: still accepting, but unready, and asking clients to go elsewhere.
    const readyz = await send(served.port, '/readyz', { ca: certs.caPem });
    assert.equal(readyz.status, 503);
    assert.deepEqual(readyz.json, { status: 'not ready', reason: 'shutting down' });
    assert.equal(readyz.headers['connection'], 'close');
    assert.equal((await send(served.port, '/healthz', { ca: certs.caPem })).status, 200);
    assert.equal((await fetchText(`http://127.0.0.1:${served.metricsPort}/metrics`)).status, 200, 'metrics still scraped');

    // After the drain: no new connections.
    await served.logLine((l) => l['msg'] === 'no longer accepting connections; finishing in-flight requests');
    // (A connection that raced the close of the listener may be reset instead; then try again.)
    const refusal = await eventually('a refused connection', async () => {
      try {
        await send(served.port, '/healthz', { ca: certs.caPem });
        return undefined;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return code === 'ECONNRESET' ? undefined : code;
      }
    });
    assert.equal(refusal, 'ECONNREFUSED');

    // The request that was in flight all along is answered in full.
    const res = await inFlight.finish();
    assert.equal(res.status, 200, res.head);
    assert.match(res.head, /\r\nconnection: close/i);
    assert.equal(res.json['response']['uid'], 'in-flight');
    assert.equal(res.json['response']['patchType'], 'JSONPatch');

    const [code, signal] = await served.exited;
    assert.equal(signal, null, served.output());
    assert.equal(code, 0, served.output());
    // Logged after both servers (HTTPS and metrics) and the watches closed, not on a forced exit.
    assert.match(served.output(), /"msg":"shut down"/);
  });

  it('SIGINT: the same clean exit', { timeout: 60_000 }, async () => {
    const served = await startServe();
    assert.ok(served.proc.kill('SIGINT'));
    const [code, signal] = await served.exited;
    assert.equal(signal, null, served.output());
    assert.equal(code, 0, served.output());
    assert.match(served.output(), /"signal":"SIGINT".*"msg":"shutting down"/);
  });
});

describe('start-up checks', () => {
  const run = (args: string[]) => runCli(['serve', '--host', '127.0.0.1', '--namespaces-file', namespacesFile, ...args], home);

  it('a key that does not belong to the certificate exits 2 naming both files', { timeout: 60_000 }, () => {
    const result = run(['--tls-cert', certs.certFile, '--tls-key', otherCerts.keyFile]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /other\/tls\.key is not the private key of the certificate in .*certs\/tls\.crt/);
  });

  it('a --client-ca that is not a PEM certificate exits 2 naming the file', { timeout: 60_000 }, () => {
    const bad = join(work, 'not-a-ca.pem');
    writeFileSync(bad, 'hello\n');
    const result = run([...tlsFlags(), '--client-ca', bad]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /not-a-ca\.pem: not a PEM CA certificate/);
  });

  it('a metrics port in use exits 1 naming --metrics-port, without hanging', { timeout: 60_000 }, async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const taken = (blocker.address() as { port: number }).port;
    try {
      const port = await freePort();
      const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const proc = spawn(
          process.execPath,
          ['--import', 'tsx', CLI_SOURCE, 'serve', '--host', '127.0.0.1', '--namespaces-file', namespacesFile, '--port', String(port), '--metrics-port', String(taken), ...tlsFlags()],
          { cwd: REPO_ROOT, env: noClusterEnv(home), stdio: ['ignore', 'ignore', 'pipe'] },
        );
        children.push(proc);
        let stderr = '';
        proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        proc.on('exit', (status) => resolve({ status, stderr }));
      });
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`--metrics-port ${taken}: cannot listen on 127\\.0\\.0\\.1:${taken} \\(EADDRINUSE\\)`));
    } finally {
      blocker.close();
    }
  });
});
