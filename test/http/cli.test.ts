// The real `realip-webhook` command in a child process: start-up with no cluster configured, one
// admission over HTTPS, a clean exit on SIGTERM, and exit code 2 on bad input.
//   node --import tsx --test test/http/cli.test.ts
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { BUNDLED_NAMESPACES_FILE } from '../../src/config.js';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { runCli, spawnServe } from '../support/cli.js';
import { applyStrict, decodePatch } from '../support/patch.js';

let work = '';
let home = '';
let certs: ServingCerts;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-cli-test-'));
  home = join(work, 'home');
  mkdirSync(home);
  certs = generateCerts(join(work, 'certs'));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('realip-webhook serve', () => {
  let child: ChildProcess | undefined;
  after(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('starts with the bundled namespaces, admits over HTTPS and exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const served = await spawnServe(home, ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile]);
    const { proc, port, lines, logLine, exited } = served;
    child = proc;

    const listening = await logLine((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Server listening'));
    assert.match(listening['msg'], new RegExp(`https://127\\.0\\.0\\.1:${port}`));

    const source = lines.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('reading namespace labels from file'));
    assert.ok(source, `start-up line naming the namespace source; got:\n${served.stdout()}`);
    assert.equal(source['file'], BUNDLED_NAMESPACES_FILE);
    assert.match(source['reason'], /no cluster configured/);
    assert.ok((source['msg'] as string).includes(BUNDLED_NAMESPACES_FILE));

    const object = deployment();
    const res = await request(`https://127.0.0.1:${port}`).post('/mutate').ca(certs.caPem).send(review(object, { uid: 'cli-1' }));
    assert.equal(res.status, 200);
    assert.equal(res.body.response.uid, 'cli-1');
    assert.equal(res.body.response.patchType, 'JSONPatch');
    const result = applyStrict(object, decodePatch(res.body.response.patch));
    assert.equal(result['spec']['template']['metadata']['annotations']['sidecar.istio.io/interceptionMode'], 'TPROXY');
    const admission = await logLine((l) => l['msg'] === 'admission');
    assert.equal(admission['uid'], 'cli-1');
    assert.equal(admission['outcome'], 'patched');

    assert.ok(proc.kill('SIGTERM'));
    const [code, signal] = await exited;
    assert.equal(signal, null, `stderr:\n${served.stderr()}`);
    assert.equal(code, 0, `stderr:\n${served.stderr()}`);
    assert.ok(lines.some((l) => l['msg'] === 'shutting down' && l['signal'] === 'SIGTERM'));
  });

  it('--port 99999 exits 2 with an error naming --port', { timeout: 60_000 }, () => {
    const run = runCli(['serve', '--port', '99999', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile], home);
    assert.equal(run.status, 2, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
    assert.match(run.stderr, /--port "99999"/);
    assert.match(run.stderr, /1 to 65535/);
  });

  it('a missing --tls-cert exits 2 naming the flag and REALIP_TLS_CERT', { timeout: 60_000 }, () => {
    const run = runCli(['serve', '--tls-key', certs.keyFile], home);
    assert.equal(run.status, 2, `stderr: ${run.stderr}`);
    assert.match(run.stderr, /--tls-cert is required/);
    assert.match(run.stderr, /REALIP_TLS_CERT/);
  });

  it('serve --help prints the flags and exits 0', { timeout: 60_000 }, () => {
    const run = runCli(['serve', '--help'], home);
    assert.equal(run.status, 0, `stderr: ${run.stderr}`);
    assert.match(run.stdout, /--tls-cert/);
    assert.match(run.stdout, /REALIP_PORT/);
  });
});

describe('realip-webhook', () => {
  it('an unknown command exits 2 and names it', { timeout: 60_000 }, () => {
    const run = runCli(['frobnicate'], home);
    assert.equal(run.status, 2, `stderr: ${run.stderr}`);
    assert.match(run.stderr, /unknown command "frobnicate"/);
    assert.match(run.stderr, /allowed: serve/);
  });

  it('no command prints the usage and exits 2', { timeout: 60_000 }, () => {
    const run = runCli([], home);
    assert.equal(run.status, 2);
    assert.match(run.stdout, /Usage: realip-webhook <command>/);
  });
});
