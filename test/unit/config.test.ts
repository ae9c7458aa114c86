// parseServeConfig: flags, their REALIP_* twins, defaults, and the errors an operator reads at start.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUNDLED_NAMESPACES_FILE, parseServeConfig, type ServeConfig } from '../../src/config.js';
import { assertConfigError } from '../support/config.js';

let work = '';
let cert = '';
let key = '';
let namespacesFile = '';
let kubeconfig = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-config-test-'));
  cert = join(work, 'tls.crt');
  key = join(work, 'tls.key');
  namespacesFile = join(work, 'namespaces.yaml');
  kubeconfig = join(work, 'kubeconfig');
  writeFileSync(cert, 'cert');
  writeFileSync(key, 'key');
  writeFileSync(namespacesFile, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n');
  writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\n');
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const HOME = '/home/tester';
/** A checkout with no cluster anywhere: only the example namespaces file exists. */
const checkoutWithoutCluster = (path: string): boolean => path === BUNDLED_NAMESPACES_FILE;
/** The certificate flags every valid configuration needs, plus `argv`. */
const tlsFlags = (...argv: string[]) => ['--tls-cert', cert, '--tls-key', key, ...argv];
const parse = (
  argv: string[],
  env: Record<string, string | undefined> = { HOME },
  exists: (path: string) => boolean = checkoutWithoutCluster,
): ServeConfig =>
  parseServeConfig(argv, env, exists);

describe('defaults', () => {
  it('port 8443, host 0.0.0.0, prefix realip.io, level info, fail open', () => {
    const config = parse(tlsFlags());
    assert.equal(config.port, 8443);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.labelPrefix, 'realip.io');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.failClosed, false);
    assert.equal(config.tlsCert, cert);
    assert.equal(config.tlsKey, key);
  });
});

describe('environment twins', () => {
  it('REALIP_* variables are used when no flag is given', () => {
    const config = parse([], {
      HOME,
      REALIP_TLS_CERT: cert,
      REALIP_TLS_KEY: key,
      REALIP_PORT: '9443',
      REALIP_HOST: '127.0.0.1',
      REALIP_LABEL_PREFIX: 'ip.example.com',
      REALIP_LOG_LEVEL: 'debug',
      REALIP_FAIL_CLOSED: 'true',
      REALIP_NAMESPACES_FILE: namespacesFile,
    });
    assert.equal(config.port, 9443);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.tlsCert, cert);
    assert.equal(config.tlsKey, key);
    assert.equal(config.labelPrefix, 'ip.example.com');
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.failClosed, true);
    assert.deepEqual(config.namespaces, { type: 'file', path: namespacesFile, reason: '--namespaces-file' });
  });

  it('a flag beats its environment twin', () => {
    const config = parse(tlsFlags('--port', '10443', '--log-level', 'warn', '--label-prefix', 'flag.io'), {
      HOME,
      REALIP_PORT: '9443',
      REALIP_LOG_LEVEL: 'debug',
      REALIP_LABEL_PREFIX: 'env.io',
      REALIP_TLS_CERT: join(work, 'missing.crt'),
    });
    assert.equal(config.port, 10443);
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.labelPrefix, 'flag.io');
    assert.equal(config.tlsCert, cert);
  });

  it('--fail-closed turns fail-closed on', () => {
    assert.equal(parse(tlsFlags('--fail-closed')).failClosed, true);
  });

  for (const [value, expected] of [
    ['true', true],
    ['1', true],
    ['yes', true],
    ['TRUE', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ] as const) {
    it(`REALIP_FAIL_CLOSED=${value} → ${expected}`, () => {
      assert.equal(parse(tlsFlags(), { HOME, REALIP_FAIL_CLOSED: value }).failClosed, expected);
    });
  }

  it('an empty variable counts as unset', () => {
    const config = parse(tlsFlags(), { HOME, REALIP_PORT: '', REALIP_FAIL_CLOSED: '' });
    assert.equal(config.port, 8443);
    assert.equal(config.failClosed, false);
  });

  it('REALIP_FAIL_CLOSED=maybe: the error names the variable and the allowed values', () => {
    assertConfigError(
      () => parse(tlsFlags(), { HOME, REALIP_FAIL_CLOSED: 'maybe' }),
      /REALIP_FAIL_CLOSED/,
      /"maybe"/,
      /true, false/,
    );
  });
});

describe('invalid values', () => {
  for (const port of ['0', '70000', 'abc', '-1', '8443.5', '']) {
    it(`--port ${JSON.stringify(port)}: the error names --port and the range`, () => {
      assertConfigError(() => parse(tlsFlags(`--port=${port}`)), /--port/, /1 to 65535/);
    });
  }

  it('REALIP_PORT=70000 is rejected too', () => {
    assertConfigError(() => parse(tlsFlags(), { HOME, REALIP_PORT: '70000' }), /--port "70000"/, /1 to 65535/);
  });

  it('a bad log level lists the levels', () => {
    assertConfigError(() => parse(tlsFlags('--log-level', 'loud')), /--log-level "loud"/, /fatal, error, warn, info, debug, trace, silent/);
  });

  for (const prefix of ['Realip_IO', 'realip.io/', '-realip.io', 'a'.repeat(254)]) {
    it(`--label-prefix ${JSON.stringify(prefix.length > 40 ? `${prefix.slice(0, 10)}…` : prefix)} is not a DNS subdomain`, () => {
      assertConfigError(() => parse(tlsFlags(`--label-prefix=${prefix}`)), /--label-prefix/, /DNS subdomain/);
    });
  }

  it('a missing --tls-cert names the flag and its environment variable', () => {
    assertConfigError(() => parse(['--tls-key', key]), /--tls-cert is required/, /REALIP_TLS_CERT/);
  });

  it('a missing --tls-key names the flag and its environment variable', () => {
    assertConfigError(() => parse(['--tls-cert', cert]), /--tls-key is required/, /REALIP_TLS_KEY/);
  });

  it('an unreadable certificate path names the flag, the path and the reason', () => {
    const missing = join(work, 'nope', 'tls.crt');
    assertConfigError(() => parse(['--tls-cert', missing, '--tls-key', key]), /--tls-cert/, new RegExp(missing.replace(/[.]/g, '\\.')), /ENOENT/);
  });

  it('an unknown flag lists the allowed flags', () => {
    assertConfigError(() => parse(tlsFlags('--prot', '8443')), /--prot/, /allowed flags:.*--port.*--tls-cert.*--namespaces-file/);
  });

  it('a positional argument is rejected', () => {
    assertConfigError(() => parse(tlsFlags('extra')), /allowed flags/);
  });

  it('--kubeconfig and --namespaces-file together are an error', () => {
    assertConfigError(
      () => parse(tlsFlags('--kubeconfig', kubeconfig, '--namespaces-file', namespacesFile)),
      /--kubeconfig/,
      /--namespaces-file/,
    );
  });

  it('an unreadable --namespaces-file is an error naming the flag', () => {
    assertConfigError(() => parse(tlsFlags('--namespaces-file', join(work, 'absent.yaml'))), /--namespaces-file/, /absent\.yaml/);
  });
});

describe('namespace source', () => {
  const TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
  const only = (...paths: string[]) => (p: string) => paths.includes(p);

  it('--namespaces-file: that file', () => {
    assert.deepEqual(parse(tlsFlags('--namespaces-file', namespacesFile)).namespaces, {
      type: 'file',
      path: namespacesFile,
      reason: '--namespaces-file',
    });
  });

  it('--kubeconfig: that kubeconfig, even in a cluster', () => {
    const config = parse(tlsFlags('--kubeconfig', kubeconfig), { HOME, KUBERNETES_SERVICE_HOST: '10.0.0.1' }, only(TOKEN));
    assert.deepEqual(config.namespaces, { type: 'kubeconfig', path: kubeconfig, reason: '--kubeconfig' });
  });

  it('in a cluster: KUBERNETES_SERVICE_HOST set and the service account token present', () => {
    const config = parse(tlsFlags(), { HOME, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBECONFIG: '/k/config' }, only(TOKEN, '/k/config'));
    assert.equal(config.namespaces.type, 'in-cluster');
  });

  it('KUBERNETES_SERVICE_HOST without a token is not in a cluster', () => {
    const config = parse(tlsFlags(), { HOME, KUBERNETES_SERVICE_HOST: '10.0.0.1' }, only(`${HOME}/.kube/config`));
    assert.deepEqual(config.namespaces, { type: 'kubeconfig', path: `${HOME}/.kube/config`, reason: '~/.kube/config' });
  });

  it('$KUBECONFIG: the first listed file that exists', () => {
    const config = parse(tlsFlags(), { HOME, KUBECONFIG: '/a/missing:/b/present:/c/also' }, only('/b/present', '/c/also', `${HOME}/.kube/config`));
    assert.deepEqual(config.namespaces, { type: 'kubeconfig', path: '/b/present', reason: '$KUBECONFIG' });
  });

  it('~/.kube/config under $HOME when $KUBECONFIG names nothing that exists', () => {
    const config = parse(tlsFlags(), { HOME, KUBECONFIG: '/a/missing' }, only(`${HOME}/.kube/config`));
    assert.deepEqual(config.namespaces, { type: 'kubeconfig', path: `${HOME}/.kube/config`, reason: '~/.kube/config' });
  });

  it('else the bundled example file, saying no cluster is configured', () => {
    const config = parse(tlsFlags(), { HOME });
    assert.equal(config.namespaces.type, 'file');
    assert.equal((config.namespaces as { path: string }).path, BUNDLED_NAMESPACES_FILE);
    assert.match(config.namespaces.reason, /no cluster configured/);
    assert.ok(existsSync(BUNDLED_NAMESPACES_FILE), `${BUNDLED_NAMESPACES_FILE} exists on disk`);
    assert.match(BUNDLED_NAMESPACES_FILE, /manifests[/\\]examples[/\\]namespaces\.yaml$/);
  });

  it('no cluster and no example file (the image): one line naming --kubeconfig and --namespaces-file', () => {
    assertConfigError(
      () => parse(tlsFlags(), { HOME }, () => false),
      /^no namespace source: no cluster configured \(.*\), and no --namespaces-file; give --kubeconfig or --namespaces-file/,
      /REALIP_KUBECONFIG/,
      /REALIP_NAMESPACES_FILE/,
      /^[^\n]*$/,
    );
  });

  it('with no flags at all, --tls-cert is said first, cluster or not', () => {
    assertConfigError(() => parse([], { HOME }, () => false), /^--tls-cert is required/);
  });
});
