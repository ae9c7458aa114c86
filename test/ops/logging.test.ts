// The admission log of the real `serve` process: its lines are written asynchronously (a stalled
// log reader must not hold the event loop), so a SIGTERM while admissions are being answered must
// still leave one line for every admission answered, and the shutdown lines after them.
//   node --import tsx --test test/ops/logging.test.ts
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { spawnServe } from '../support/cli.js';
import { NAMESPACES_YAML, send } from './harness.js';

const CLIENTS = 8;
/** Admissions answered before the signal; more keep coming during the drain. */
const BEFORE_SIGNAL = 200;

let work = '';
let certs: ServingCerts;
let namespacesFile = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-logging-test-'));
  mkdirSync(join(work, 'home'));
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
  certs = generateCerts(join(work, 'certs'));
});

after(() => rmSync(work, { recursive: true, force: true }));

describe('admission log on shutdown', () => {
  it('SIGTERM under load: every answered admission has its line, written before the process exits', { timeout: 60_000 }, async () => {
    const served = await spawnServe(join(work, 'home'), ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--namespaces-file', namespacesFile]);
    const closed = once(served.proc, 'close');
    try {
      await served.logLine((l) => l['msg'] === 'watching the serving certificate for changes');
      const agent = new https.Agent({ keepAlive: true, maxSockets: CLIENTS });
      const answered: string[] = [];
      let next = 0;
      const client = async () => {
        // Until the server stops taking connections after the drain.
        for (;;) {
          const uid = `logged-${next++}`;
          try {
            const res = await send(served.port, '/mutate', { body: review(deployment(), { uid, namespace: 'demo' }), ca: certs.caPem, agent });
            assert.equal(res.status, 200, res.text);
            answered.push(uid);
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            return;
          }
        }
      };
      const clients = Array.from({ length: CLIENTS }, client);
      while (answered.length < BEFORE_SIGNAL) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(served.proc.kill('SIGTERM'));
      await Promise.all(clients);
      agent.destroy();

      const [code, signal] = await served.exited;
      await closed;
      assert.equal(signal, null, served.stderr());
      assert.equal(code, 0, served.stderr());
      assert.ok(answered.length > BEFORE_SIGNAL, `admissions were still answered during the drain (${answered.length})`);
      const logged = new Set(served.lines.filter((l) => l['msg'] === 'admission').map((l) => l['uid']));
      const missing = answered.filter((uid) => !logged.has(uid));
      assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered admissions have no log line`);
      assert.equal(served.lines.at(-1)?.['msg'], 'shut down', 'the last line is the last one logged');
    } finally {
      if (served.proc.exitCode === null) served.proc.kill('SIGKILL');
    }
  });
});
