// The real `realip-webhook` command in a child process: start-up with no cluster configured, one
// admission over HTTPS, a clean exit on SIGTERM, and exit code 2 on bad input.
//   node --import tsx --test test/http/cli.test.ts
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { BUNDLED_NAMESPACES_FILE } from '../../src/config.js';
import { deployment, review } from '../fixtures/objects.js';
import { applyStrict, decodePatch } from '../support/patch.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const repo = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(repo, 'src', 'cli.ts');

let work = '';
let home = '';
let caPem = '';
let tlsCert = '';
let tlsKey = '';

/** The environment of a machine with no cluster: no kubeconfig, not in a pod, an empty HOME. */
function noClusterEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'KUBECONFIG' || name.startsWith('KUBERNETES_') || name.startsWith('REALIP_')) continue;
    // The test runner's own variables would make the child report to it.
    if (name.startsWith('NODE_TEST')) continue;
    env[name] = value;
  }
  env['HOME'] = home;
  return env;
}

function runCli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: repo,
    env: noClusterEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-cli-test-'));
  home = join(work, 'home');
  mkdirSync(home);
  execFileSync(join(repo, 'certs', 'generate.sh'), ['--out', join(work, 'certs'), '--ip', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  caPem = readFileSync(join(work, 'certs', 'ca.crt'), 'utf8');
  tlsCert = join(work, 'certs', 'tls.crt');
  tlsKey = join(work, 'certs', 'tls.key');
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
    const port = await freePort();
    const metricsPort = await freePort();
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'serve', '--port', String(port), '--metrics-port', String(metricsPort), '--host', '127.0.0.1', '--tls-cert', tlsCert, '--tls-key', tlsKey],
      { cwd: repo, env: noClusterEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

    const lines: Json[] = [];
    const rawLines: string[] = [];
    const waiters: { match: (l: Json) => boolean; resolve: (l: Json) => void }[] = [];
    createInterface({ input: proc.stdout! }).on('line', (raw) => {
      rawLines.push(raw);
      let line: Json;
      try {
        line = JSON.parse(raw) as Json;
      } catch {
        assert.fail(`stdout line is not JSON: ${raw}`);
      }
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.match(line)) w.resolve(line);
        else waiters.push(w);
      }
    });
    /** Resolves with the first log line that matches, or rejects if the process exits first. */
    const logLine = (match: (l: Json) => boolean) =>
      Promise.race([
        new Promise<Json>((resolve) => {
          const seen = lines.find(match);
          if (seen) resolve(seen);
          else waiters.push({ match, resolve });
        }),
        exited.then(([code, signal]) => {
          throw new Error(`exited (code ${code}, signal ${signal}) before the log line; stdout:\n${rawLines.join('\n')}\nstderr:\n${stderr}`);
        }),
      ]);

    const listening = await logLine((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Server listening'));
    assert.match(listening['msg'], new RegExp(`https://127\\.0\\.0\\.1:${port}`));

    const source = lines.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('reading namespace labels from file'));
    assert.ok(source, `start-up line naming the namespace source; got:\n${rawLines.join('\n')}`);
    assert.equal(source['file'], BUNDLED_NAMESPACES_FILE);
    assert.match(source['reason'], /no cluster configured/);
    assert.ok((source['msg'] as string).includes(BUNDLED_NAMESPACES_FILE));

    const object = deployment();
    const res = await request(`https://127.0.0.1:${port}`).post('/mutate').ca(caPem).send(review(object, { uid: 'cli-1' }));
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
    assert.equal(signal, null, `stderr:\n${stderr}`);
    assert.equal(code, 0, `stderr:\n${stderr}`);
    assert.ok(lines.some((l) => l['msg'] === 'shutting down' && l['signal'] === 'SIGTERM'));
  });

  it('--port 99999 exits 2 with an error naming --port', { timeout: 60_000 }, () => {
    const run = runCli(['serve', '--port', '99999', '--tls-cert', tlsCert, '--tls-key', tlsKey]);
    assert.equal(run.status, 2, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
    assert.match(run.stderr, /--port "99999"/);
    assert.match(run.stderr, /1 to 65535/);
  });

  it('a missing --tls-cert exits 2 naming the flag and REALIP_TLS_CERT', { timeout: 60_000 }, () => {
    const run = runCli(['serve', '--tls-key', tlsKey]);
    assert.equal(run.status, 2, `stderr: ${run.stderr}`);
    assert.match(run.stderr, /--tls-cert is required/);
    assert.match(run.stderr, /REALIP_TLS_CERT/);
  });

  it('serve --help prints the flags and exits 0', { timeout: 60_000 }, () => {
    const run = runCli(['serve', '--help']);
    assert.equal(run.status, 0, `stderr: ${run.stderr}`);
    assert.match(run.stdout, /--tls-cert/);
    assert.match(run.stdout, /REALIP_PORT/);
  });
});

describe('realip-webhook', () => {
  it('an unknown command exits 2 and names it', { timeout: 60_000 }, () => {
    const run = runCli(['frobnicate']);
    assert.equal(run.status, 2, `stderr: ${run.stderr}`);
    assert.match(run.stderr, /unknown command "frobnicate"/);
    assert.match(run.stderr, /allowed: serve/);
  });

  it('no command prints the usage and exits 2', { timeout: 60_000 }, () => {
    const run = runCli([]);
    assert.equal(run.status, 2);
    assert.match(run.stdout, /Usage: realip-webhook <command>/);
  });
});
