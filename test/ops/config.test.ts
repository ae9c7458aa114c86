// The operations flags: --metrics-port and --client-ca, with their REALIP_* twins.
//   node --import tsx --test test/ops/config.test.ts
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseServeConfig, serveUsage } from '../../src/config.js';
import { assertConfigError } from '../support/config.js';

let work = '';
let tls: string[] = [];
let caFile = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-ops-config-test-'));
  for (const name of ['tls.crt', 'tls.key', 'namespaces.yaml', 'client-ca.crt']) writeFileSync(join(work, name), 'x');
  tls = ['--tls-cert', join(work, 'tls.crt'), '--tls-key', join(work, 'tls.key'), '--namespaces-file', join(work, 'namespaces.yaml')];
  caFile = join(work, 'client-ca.crt');
});

after(() => rmSync(work, { recursive: true, force: true }));

const parse = (argv: string[], env: Record<string, string> = {}) => parseServeConfig([...tls, ...argv], env);

describe('--metrics-port', () => {
  it('defaults to 9090', () => assert.equal(parse([]).metricsPort, 9090));
  it('takes the flag', () => assert.equal(parse(['--metrics-port', '9100']).metricsPort, 9100));
  it('takes REALIP_METRICS_PORT, the flag winning over it', () => {
    assert.equal(parse([], { REALIP_METRICS_PORT: '9200' }).metricsPort, 9200);
    assert.equal(parse(['--metrics-port', '9100'], { REALIP_METRICS_PORT: '9200' }).metricsPort, 9100);
  });
  it('refuses a value that is not a port, naming the flag and the range', () =>
    assertConfigError(() => parse(['--metrics-port', 'http']), /--metrics-port "http"/, /1 to 65535/));
  it('refuses the HTTPS port', () =>
    assertConfigError(() => parse(['--port', '9443', '--metrics-port', '9443']), /--metrics-port 9443 is also the HTTPS --port/));
});

describe('--client-ca', () => {
  it('is off by default', () => assert.equal(parse([]).clientCa, undefined));
  it('takes the flag', () => assert.equal(parse(['--client-ca', caFile]).clientCa, caFile));
  it('takes REALIP_CLIENT_CA', () => assert.equal(parse([], { REALIP_CLIENT_CA: caFile }).clientCa, caFile));
  it('refuses a file it cannot read, naming the flag and the file', () =>
    assertConfigError(() => parse(['--client-ca', join(work, 'missing.crt')]), /--client-ca .*missing\.crt: cannot read the file \(ENOENT\)/));
});

describe('serve --help', () => {
  it('lists both flags with their environment twins', () => {
    const usage = serveUsage();
    assert.match(usage, /--metrics-port\s+REALIP_METRICS_PORT\s+.*\(default 9090\)/);
    assert.match(usage, /--client-ca\s+REALIP_CLIENT_CA\s+/);
  });
});
